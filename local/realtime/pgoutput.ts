/**
 * A decoder for PostgreSQL's `pgoutput` logical replication protocol (version
 * 1), the messages inside `XLogData` frames: Begin, Commit, Relation, Insert,
 * Update, Delete, Truncate (others are skipped). Values stay in their text
 * representation so that Postgres, not JavaScript, later gives them their
 * types — the way hosted Realtime's `realtime.cast` does. Pure.
 *
 * Written instead of postgres.js's `sql.subscribe` because that one drops what
 * the Realtime payload needs: the commit timestamp (`commit_timestamp`),
 * transaction boundaries, and the raw text of each value.
 *
 * See https://www.postgresql.org/docs/current/protocol-logicalrep-message-formats.html
 */

export interface RelationColumn {
  name: string;
  /** Part of the replica identity (the primary key unless changed). */
  isKey: boolean;
  typeOid: number;
  typeModifier: number;
}

export interface Relation {
  id: number;
  schema: string;
  table: string;
  replicaIdentity: "d" | "n" | "f" | "i";
  columns: RelationColumn[];
}

/** One column value: null, unchanged TOAST (not sent), or the text representation. */
export type TupleValue = { kind: "null" } | { kind: "unchanged" } | { kind: "text"; text: string };

export type PgOutputMessage =
  | { type: "begin"; finalLsn: bigint; commitTime: bigint; xid: number }
  | { type: "commit"; commitLsn: bigint; endLsn: bigint; commitTime: bigint }
  | { type: "relation"; relation: Relation }
  | { type: "insert"; relationId: number; newTuple: TupleValue[] }
  | {
    type: "update";
    relationId: number;
    /** "K": the old key columns (key changed); "O": the whole old row (replica identity full). */
    oldKind: "K" | "O" | null;
    oldTuple: TupleValue[] | null;
    newTuple: TupleValue[];
  }
  | { type: "delete"; relationId: number; oldKind: "K" | "O"; oldTuple: TupleValue[] }
  | { type: "truncate"; relationIds: number[] }
  | { type: "other"; tag: string };

/** Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01). */
const PG_EPOCH_OFFSET_US = 946_684_800_000_000n;

/** Converts a pgoutput timestamp (µs since 2000-01-01) to µs since the Unix epoch. */
export function pgTimestampToUnixMicros(value: bigint): bigint {
  return value + PG_EPOCH_OFFSET_US;
}

class Reader {
  offset = 0;
  constructor(private readonly buffer: Buffer) {}
  byte(): number {
    return this.buffer.readUInt8(this.offset++);
  }
  int16(): number {
    const v = this.buffer.readInt16BE(this.offset);
    this.offset += 2;
    return v;
  }
  int32(): number {
    const v = this.buffer.readInt32BE(this.offset);
    this.offset += 4;
    return v;
  }
  uint32(): number {
    const v = this.buffer.readUInt32BE(this.offset);
    this.offset += 4;
    return v;
  }
  int64(): bigint {
    const v = this.buffer.readBigInt64BE(this.offset);
    this.offset += 8;
    return v;
  }
  cstring(): string {
    const end = this.buffer.indexOf(0, this.offset);
    if (end < 0) throw new Error("pgoutput: unterminated string");
    const s = this.buffer.toString("utf8", this.offset, end);
    this.offset = end + 1;
    return s;
  }
  bytes(length: number): Buffer {
    const b = this.buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    return b;
  }
}

function readTuple(reader: Reader): TupleValue[] {
  const count = reader.int16();
  const values: TupleValue[] = [];
  for (let i = 0; i < count; i++) {
    const kind = String.fromCharCode(reader.byte());
    if (kind === "n") values.push({ kind: "null" });
    else if (kind === "u") values.push({ kind: "unchanged" });
    else if (kind === "t" || kind === "b") {
      // "b" (binary) is only sent when the `binary` option is on, which we never set.
      const length = reader.int32();
      values.push({ kind: "text", text: reader.bytes(length).toString("utf8") });
    } else throw new Error(`pgoutput: unknown tuple value kind ${kind}`);
  }
  return values;
}

/** Decodes one pgoutput message (the payload of an XLogData frame). Throws on malformed input. */
export function decodePgOutput(message: Buffer): PgOutputMessage {
  const reader = new Reader(message);
  const tag = String.fromCharCode(reader.byte());
  switch (tag) {
    case "B":
      return {
        type: "begin",
        finalLsn: reader.int64(),
        commitTime: reader.int64(),
        xid: reader.uint32(),
      };
    case "C": {
      reader.byte(); // flags, unused
      return {
        type: "commit",
        commitLsn: reader.int64(),
        endLsn: reader.int64(),
        commitTime: reader.int64(),
      };
    }
    case "R": {
      const id = reader.uint32();
      const schema = reader.cstring() || "pg_catalog";
      const table = reader.cstring();
      const replicaIdentity = String.fromCharCode(reader.byte()) as Relation["replicaIdentity"];
      const count = reader.int16();
      const columns: RelationColumn[] = [];
      for (let i = 0; i < count; i++) {
        const flags = reader.byte();
        columns.push({
          isKey: (flags & 1) === 1,
          name: reader.cstring(),
          typeOid: reader.uint32(),
          typeModifier: reader.int32(),
        });
      }
      return { type: "relation", relation: { id, schema, table, replicaIdentity, columns } };
    }
    case "I": {
      const relationId = reader.uint32();
      reader.byte(); // "N"
      return { type: "insert", relationId, newTuple: readTuple(reader) };
    }
    case "U": {
      const relationId = reader.uint32();
      let marker = String.fromCharCode(reader.byte());
      let oldKind: "K" | "O" | null = null;
      let oldTuple: TupleValue[] | null = null;
      if (marker === "K" || marker === "O") {
        oldKind = marker;
        oldTuple = readTuple(reader);
        marker = String.fromCharCode(reader.byte());
      }
      if (marker !== "N") throw new Error(`pgoutput: unexpected update marker ${marker}`);
      return { type: "update", relationId, oldKind, oldTuple, newTuple: readTuple(reader) };
    }
    case "D": {
      const relationId = reader.uint32();
      const marker = String.fromCharCode(reader.byte());
      if (marker !== "K" && marker !== "O") {
        throw new Error(`pgoutput: unexpected delete marker ${marker}`);
      }
      return { type: "delete", relationId, oldKind: marker, oldTuple: readTuple(reader) };
    }
    case "T": {
      const count = reader.uint32();
      reader.byte(); // options
      const relationIds: number[] = [];
      for (let i = 0; i < count; i++) relationIds.push(reader.uint32());
      return { type: "truncate", relationIds };
    }
    default:
      return { type: "other", tag };
  }
}
