/**
 * The local Realtime endpoint against the real `@supabase/supabase-js` client
 * (both serializer versions it offers) and, where the exact frames matter,
 * against a raw WebSocket: postgres_changes payloads, filters, RLS, Broadcast
 * from the database and between clients, private channels, token updates and
 * the error replies for what is refused or not emulated.
 *
 * The tables and policies are this file's own (rt_*), created here.
 */
import { createClient, type RealtimeChannel, type SupabaseClient } from "@supabase/supabase-js";
import { SignJWT } from "jose";
import { randomUUID } from "node:crypto";
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signRoleJwt } from "../../local/keys.ts";
import { bindingId } from "../../local/realtime/channel.ts";
import { parseSubscriptionParams } from "../../local/realtime/filters.ts";
import { useDb } from "../helpers/db.ts";
import { stack } from "../helpers/http.ts";

const sql = useDb();
const TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const VSNS = ["1.0.0", "2.0.0"] as const;
type Vsn = typeof VSNS[number];

beforeAll(async () => {
  await sql.unsafe(`
    drop table if exists public.rt_items, public.rt_owned, public.rt_unpublished, public.rt_nokey;
    create table public.rt_items (
      id bigint generated always as identity primary key,
      body text not null,
      n int,
      tags text[],
      meta jsonb,
      created_at timestamptz not null default now()
    );
    alter table public.rt_items replica identity full;
    create table public.rt_owned (
      id uuid primary key default gen_random_uuid(),
      owner uuid not null,
      note text
    );
    alter table public.rt_owned enable row level security;
    alter table public.rt_owned replica identity full;
    create policy rt_owned_own on public.rt_owned for select to authenticated
      using (owner = auth.uid());
    create table public.rt_unpublished (id int primary key);
    create table public.rt_nokey (label text);
    alter publication supabase_realtime add table public.rt_items, public.rt_owned, public.rt_nokey;
  `);
});

async function dropPrivatePolicies(): Promise<void> {
  await sql.unsafe(`
    drop policy if exists rt_private_read on realtime.messages;
    drop policy if exists rt_private_write on realtime.messages;
  `);
}

afterAll(async () => {
  await sql.unsafe(
    `drop table if exists public.rt_items, public.rt_owned, public.rt_unpublished, public.rt_nokey`,
  );
  await dropPrivatePolicies();
});

// ---------------------------------------------------------------- helpers

const secret = () => stack().jwtSecret;
const userToken = (sub: string) => signRoleJwt(secret(), "authenticated", { sub });

async function tokenExpiringIn(seconds: number): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return await new SignJWT({ role: "authenticated", sub: randomUUID() })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt(now)
    .setExpirationTime(now + seconds)
    .sign(new TextEncoder().encode(secret()));
}

async function expiredToken(): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return await new SignJWT({ role: "authenticated" })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt(now - 120)
    .setExpirationTime(now - 60)
    .sign(new TextEncoder().encode(secret()));
}

async function until(check: () => boolean, what: string, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const clients: SupabaseClient[] = [];
afterAll(async () => {
  await Promise.all(clients.map((c) => c.removeAllChannels()));
});

/** A supabase-js client speaking `vsn`, authorised with `token` (default: the anon key). */
async function client(vsn: Vsn, token?: string): Promise<SupabaseClient> {
  const c = createClient(stack().info.apiUrl, stack().info.anonKey, {
    auth: { persistSession: false, autoRefreshToken: false },
    realtime: { transport: WebSocket as never, vsn },
  });
  if (token) await c.realtime.setAuth(token);
  clients.push(c);
  return c;
}

/** Subscribes and resolves with the outcome (SUBSCRIBED, or the error status and message). */
function subscribe(channel: RealtimeChannel): Promise<{ status: string; error?: string }> {
  return new Promise((resolve) => {
    channel.subscribe((status, err) => {
      if (status === "SUBSCRIBED") resolve({ status });
      else resolve({ status, error: err?.message });
    });
  });
}

async function subscribed(channel: RealtimeChannel): Promise<RealtimeChannel> {
  expect(await subscribe(channel)).toEqual({ status: "SUBSCRIBED" });
  return channel;
}

/** A channel name no other test uses. */
const topic = (name: string) => `${name}-${randomUUID().slice(0, 8)}`;

/** The row as Postgres renders it to JSON — what postgres_changes must carry. */
async function rowJson(table: string, id: unknown): Promise<Record<string, unknown>> {
  const [row] = await sql.unsafe<{ j: Record<string, unknown> }[]>(
    `select to_jsonb(t) as j from public.${table} t where id = $1`,
    [id as string],
  );
  return row!.j;
}

/** A raw Phoenix socket, to assert frames exactly as they travel. */
class Wire {
  readonly frames: unknown[] = [];
  private constructor(readonly ws: WebSocket, readonly vsn: Vsn) {
    ws.on("message", (data, isBinary) => {
      const bytes = data as Buffer;
      this.frames.push(isBinary ? { binary: bytes } : JSON.parse(bytes.toString("utf8")));
    });
  }

  static url(params: Record<string, string>): string {
    const base = stack().info.apiUrl.replace(/^http/, "ws");
    return `${base}/realtime/v1/websocket?${new URLSearchParams(params)}`;
  }

  static open(vsn: Vsn, apikey = stack().info.anonKey): Promise<Wire> {
    const ws = new WebSocket(Wire.url({ apikey, vsn }));
    return new Promise((resolve, reject) => {
      const wire = new Wire(ws, vsn);
      ws.once("open", () => resolve(wire));
      ws.once("error", reject);
    });
  }

  /** Sends a message in this socket's serializer. */
  send(joinRef: string | null, ref: string | null, topic: string, event: string, payload: unknown) {
    this.ws.send(JSON.stringify(
      this.vsn === "2.0.0"
        ? [joinRef, ref, topic, event, payload]
        : { join_ref: joinRef, ref, topic, event, payload },
    ));
  }

  /** Resolves with the first frame (after `from`) matching `match`. */
  async next(match: (frame: unknown) => boolean, what: string, from = 0): Promise<unknown> {
    let found: unknown;
    await until(() => {
      found = this.frames.slice(from).find(match);
      return found !== undefined;
    }, what);
    return found;
  }

  close() {
    this.ws.close();
  }
}

/** Reads [join_ref, ref, topic, event, payload] from either serializer's frame. */
function parts(
  frame: unknown,
): { joinRef?: unknown; ref: unknown; topic: unknown; event: unknown; payload: unknown } {
  if (Array.isArray(frame)) {
    const [joinRef, ref, t, event, payload] = frame;
    return { joinRef, ref, topic: t, event, payload };
  }
  const f = frame as Record<string, unknown>;
  return { ref: f.ref, topic: f.topic, event: f.event, payload: f.payload };
}

/** Refused upgrade: the HTTP status and JSON body. */
function upgradeRefusal(url: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(body) }));
    });
    ws.on("open", () => reject(new Error("upgrade was accepted")));
    ws.on("error", () => {});
  });
}

// ---------------------------------------------------------------- wire format

describe.each(VSNS)("wire format, vsn %s", (vsn) => {
  it("answers heartbeats on the phoenix topic", async () => {
    const wire = await Wire.open(vsn);
    wire.send(null, "7", "phoenix", "heartbeat", {});
    const reply = await wire.next((f) => parts(f).ref === "7", "heartbeat reply");
    expect(reply).toEqual(
      vsn === "2.0.0" ? [null, "7", "phoenix", "phx_reply", { status: "ok", response: {} }] : {
        event: "phx_reply",
        payload: { status: "ok", response: {} },
        ref: "7",
        topic: "phoenix",
      },
    );
    wire.close();
  });

  it("joins with binding ids, says when Postgres is subscribed, and sends changes in hosted's shape", async () => {
    const wire = await Wire.open(vsn);
    const t = `realtime:${topic("wire")}`;
    const binding = { event: "INSERT", schema: "public", table: "rt_items", filter: "n=eq.41" };
    wire.send("1", "1", t, "phx_join", {
      config: {
        broadcast: { self: false, ack: false },
        presence: { key: "", enabled: false },
        postgres_changes: [binding],
        private: false,
      },
      access_token: stack().info.anonKey,
    });
    const reply = parts(await wire.next((f) => parts(f).ref === "1", "join reply"));
    expect(reply.event).toBe("phx_reply");
    expect(reply.topic).toBe(t);
    const response = reply.payload as {
      status: string;
      response: { postgres_changes: { id: number }[] };
    };
    expect(response.status).toBe("ok");
    const id = response.response.postgres_changes[0]!.id;
    expect(response.response).toEqual({ postgres_changes: [{ ...binding, id }] });
    expect(Number.isInteger(id)).toBe(true);

    const system = await wire.next((f) => parts(f).event === "system", "system message");
    expect(parts(system)).toMatchObject({
      topic: t,
      payload: {
        extension: "postgres_changes",
        status: "ok",
        message: "Subscribed to PostgreSQL",
        channel: t.slice("realtime:".length),
      },
    });
    if (vsn === "2.0.0") expect((system as unknown[])[0]).toBe("1");

    const [row] = await sql`insert into public.rt_items (body, n, tags, meta)
      values ('wire', 41, '{a,b}', '{"k": [1, 2]}') returning id`;
    const change = await wire.next((f) => parts(f).event === "postgres_changes", "change");
    const expected = {
      ids: [id],
      data: {
        columns: [
          { name: "id", type: "int8" },
          { name: "body", type: "text" },
          { name: "n", type: "int4" },
          { name: "tags", type: "_text" },
          { name: "meta", type: "jsonb" },
          { name: "created_at", type: "timestamptz" },
        ],
        commit_timestamp: expect.stringMatching(TIMESTAMP),
        errors: null,
        record: await rowJson("rt_items", row!.id),
        schema: "public",
        table: "rt_items",
        type: "INSERT",
      },
    };
    expect(change).toEqual(
      vsn === "2.0.0"
        ? [null, null, t, "postgres_changes", expected]
        : { event: "postgres_changes", payload: expected, ref: null, topic: t },
    );
    wire.close();
  });

  it("answers a message for a topic it has not joined with an error", async () => {
    const wire = await Wire.open(vsn);
    wire.send("3", "4", "realtime:not-joined", "broadcast", {
      type: "broadcast",
      event: "x",
      payload: {},
    });
    const reply = await wire.next((f) => parts(f).ref === "4", "reply");
    expect(parts(reply).payload).toEqual({
      status: "error",
      response: { reason: "unmatched topic" },
    });
    wire.close();
  });
});

describe.each(VSNS)("channel lifecycle on the wire, vsn %s", (vsn) => {
  const join = (wire: Wire, joinRef: string, t: string, config: Record<string, unknown> = {}) =>
    wire.send(joinRef, joinRef, t, "phx_join", {
      config: {
        broadcast: { self: false, ack: false },
        postgres_changes: [],
        private: false,
        ...config,
      },
    });

  it("answers an event it does not handle with an error reply, not silence", async () => {
    const wire = await Wire.open(vsn);
    const t = `realtime:${topic("unknown-event")}`;
    join(wire, "1", t);
    await wire.next((f) => parts(f).ref === "1", "join reply");
    wire.send("1", "2", t, "shout", { loud: true });
    const reply = await wire.next((f) => parts(f).ref === "2", "reply");
    expect(parts(reply).payload).toEqual({
      status: "error",
      response: { reason: "UnsupportedMessage: unexpected message from client of type `shout`" },
    });
    wire.close();
  });

  it("replaces an earlier join of the same topic, closing it, and leaves on phx_leave", async () => {
    const wire = await Wire.open(vsn);
    const t = `realtime:${topic("rejoin")}`;
    join(wire, "1", t);
    await wire.next((f) => parts(f).ref === "1", "first join reply");
    const mark = wire.frames.length;
    join(wire, "5", t);
    const close = await wire.next((f) => parts(f).event === "phx_close", "phx_close", mark);
    expect(parts(close)).toMatchObject({ topic: t, ref: "1", payload: {} });
    expect(parts(await wire.next((f) => parts(f).ref === "5", "second join reply", mark)).payload)
      .toEqual({ status: "ok", response: { postgres_changes: [] } });
    wire.send("5", "6", t, "phx_leave", {});
    expect(parts(await wire.next((f) => parts(f).ref === "6", "leave reply")).payload)
      .toEqual({ status: "ok", response: {} });
    // Left: the topic is no longer joined.
    wire.send("5", "7", t, "broadcast", { type: "broadcast", event: "x", payload: {} });
    expect(parts(await wire.next((f) => parts(f).ref === "7", "reply")).payload)
      .toEqual({ status: "error", response: { reason: "unmatched topic" } });
    wire.close();
  });

  it("says the replication connection is ready when asked to", async () => {
    const wire = await Wire.open(vsn);
    const t = `realtime:${topic("ready")}`;
    join(wire, "1", t, { broadcast: { replication_ready: true } });
    const system = await wire.next((f) => parts(f).event === "system", "system message");
    expect(parts(system).payload).toEqual({
      extension: "system",
      status: "ok",
      message: "Replication connection established",
      channel: t.slice("realtime:".length),
    });
    wire.close();
  });
});

describe("connection", () => {
  it("refuses a socket without an API key, with a bad one, or with an unknown serializer", async () => {
    expect(await upgradeRefusal(Wire.url({ vsn: "2.0.0" }))).toEqual({
      status: 401,
      body: { error: "API key is missing" },
    });
    expect(await upgradeRefusal(Wire.url({ apikey: "not-a-jwt", vsn: "2.0.0" }))).toEqual({
      status: 401,
      body: { error: "The token provided is not a valid JWT" },
    });
    const forged = await signRoleJwt("another-secret-another-secret-another", "anon");
    expect(await upgradeRefusal(Wire.url({ apikey: forged, vsn: "2.0.0" }))).toEqual({
      status: 401,
      body: { error: "Failed to validate JWT signature" },
    });
    expect((await upgradeRefusal(Wire.url({ apikey: stack().info.anonKey, vsn: "3.0.0" }))).status)
      .toBe(400);
  });

  it("answers Realtime's REST API with a clear error, not silence", async () => {
    const res = await fetch(`${stack().info.apiUrl}/realtime/v1/api/broadcast`, {
      method: "POST",
      headers: { apikey: stack().info.anonKey, "content-type": "application/json" },
      body: JSON.stringify({ messages: [] }),
    });
    expect(res.status).toBe(501);
    expect((await res.json() as { error: string }).error).toContain("REST API");
    const plain = await fetch(`${stack().info.apiUrl}/realtime/v1/websocket`);
    expect(plain.status).toBe(400);
    expect(await plain.json()).toEqual({ error: "Expected a WebSocket upgrade" });
  });
});

// ---------------------------------------------------------------- supabase-js

describe.each(VSNS)("supabase-js, vsn %s", (vsn) => {
  it("delivers an insert as supabase-js parses it: eventType, new, old, typed values", async () => {
    const c = await client(vsn);
    const got: unknown[] = [];
    await subscribed(
      c.channel(topic("inserts")).on(
        "postgres_changes",
        { event: "INSERT", schema: "public", table: "rt_items" },
        (p) => got.push(p),
      ),
    );
    const [row] = await sql`insert into public.rt_items (body, n, tags, meta)
      values ('first', 1, '{x}', '{"nested": {"ok": true}}') returning id`;
    await until(() => got.length >= 1, "the insert");
    expect(got[0]).toEqual({
      schema: "public",
      table: "rt_items",
      commit_timestamp: expect.stringMatching(TIMESTAMP),
      eventType: "INSERT",
      new: await rowJson("rt_items", row!.id),
      old: {},
      errors: null,
    });
    expect((got[0] as { new: Record<string, unknown> }).new).toMatchObject({
      body: "first",
      n: 1,
      tags: ["x"],
      meta: { nested: { ok: true } },
    });
  });

  it("delivers updates and deletes with the old row (replica identity full), nothing from before the join", async () => {
    const [row] =
      await sql`insert into public.rt_items (body, n) values ('before', 5) returning id`;
    const before = await rowJson("rt_items", row!.id);
    const c = await client(vsn);
    const got: { eventType: string; new: unknown; old: unknown }[] = [];
    await subscribed(
      c.channel(topic("updates")).on(
        "postgres_changes",
        { event: "*", schema: "public", table: "rt_items", filter: `id=eq.${row!.id}` },
        (p) => got.push(p as never),
      ),
    );
    await sql`update public.rt_items set body = 'after' where id = ${row!.id}`;
    const after = await rowJson("rt_items", row!.id);
    await sql`delete from public.rt_items where id = ${row!.id}`;
    await until(() => got.length >= 2, "update and delete");
    expect(got.map((g) => [g.eventType, g.new, g.old])).toEqual([
      ["UPDATE", after, before],
      ["DELETE", {}, after],
    ]);
  });

  it("applies filters: eq, in and gt each deliver only matching rows", async () => {
    const c = await client(vsn);
    const seen: Record<string, number[]> = { eq: [], in: [], gt: [], all: [] };
    const listen = (name: string) => (p: { new: { n: number } }) => {
      seen[name]!.push(p.new.n);
    };
    await subscribed(
      c.channel(topic("filters"))
        .on("postgres_changes", {
          event: "INSERT",
          schema: "public",
          table: "rt_items",
          filter: "n=eq.2",
        }, listen("eq") as never)
        .on("postgres_changes", {
          event: "INSERT",
          schema: "public",
          table: "rt_items",
          filter: "n=in.(1,3)",
        }, listen("in") as never)
        .on("postgres_changes", {
          event: "INSERT",
          schema: "public",
          table: "rt_items",
          filter: "n=gt.2",
        }, listen("gt") as never)
        .on(
          "postgres_changes",
          { event: "INSERT", schema: "public", table: "rt_items" },
          listen("all") as never,
        ),
    );
    await sql`insert into public.rt_items (body, n) select 'f', n from generate_series(1, 4) n`;
    await until(() => seen.all!.length >= 4, "all four rows");
    expect(seen).toEqual({ eq: [2], in: [1, 3], gt: [3, 4], all: [1, 2, 3, 4] });
  });

  it("respects RLS: anon without a policy receives nothing, the owner receives their row only", async () => {
    const alice = randomUUID();
    const bob = randomUUID();
    const anon = await client(vsn);
    const asAlice = await client(vsn, await userToken(alice));
    const anonSeen: string[] = [];
    const aliceSeen: string[] = [];
    // The anon channel also watches rt_items: a later insert there, delivered in
    // commit order on the same socket, proves the rt_owned row was not withheld by lag.
    await subscribed(
      anon.channel(topic("rls-anon"))
        .on(
          "postgres_changes",
          { event: "INSERT", schema: "public", table: "rt_owned" },
          (p) => anonSeen.push(`owned:${(p.new as { note: string }).note}`),
        )
        .on(
          "postgres_changes",
          { event: "INSERT", schema: "public", table: "rt_items" },
          (p) => anonSeen.push(`items:${(p.new as { body: string }).body}`),
        ),
    );
    await subscribed(
      asAlice.channel(topic("rls-alice")).on(
        "postgres_changes",
        { event: "INSERT", schema: "public", table: "rt_owned" },
        (p) => aliceSeen.push((p.new as { note: string }).note),
      ),
    );
    await sql`insert into public.rt_owned (owner, note) values (${bob}, 'bob''s'), (${alice}, 'alice''s')`;
    await sql`insert into public.rt_items (body) values ('sentinel')`;
    await until(
      () => anonSeen.length >= 1 && aliceSeen.length >= 1,
      "the sentinel and alice's row",
    );
    expect(anonSeen).toEqual(["items:sentinel"]);
    expect(aliceSeen).toEqual(["alice's"]);
  });

  it("service_role bypasses RLS; deletes on an RLS table disclose only the primary key", async () => {
    const frank = randomUUID();
    const service = await client(vsn, stack().info.serviceRoleKey);
    const filtered: { eventType: string; new: unknown; old: unknown }[] = [];
    const deletes: { eventType: string; old: unknown }[] = [];
    await subscribed(
      service.channel(topic("service"))
        .on(
          "postgres_changes",
          { event: "*", schema: "public", table: "rt_owned", filter: `owner=eq.${frank}` },
          (p) => filtered.push(p as never),
        )
        .on(
          "postgres_changes",
          { event: "DELETE", schema: "public", table: "rt_owned" },
          (p) => deletes.push(p as never),
        ),
    );
    const [row] = await sql<{ id: string }[]>`
      insert into public.rt_owned (owner, note) values (${frank}, 'private note') returning id`;
    // RLS is checked against the table when the change is processed (as on hosted),
    // so the row must still exist then: wait before deleting it.
    await until(() => filtered.length >= 1, "the insert");
    await sql`delete from public.rt_owned where id = ${row!.id}`;
    await until(() => deletes.length >= 1 && filtered.length >= 2, "the delete");
    expect(filtered[0]).toMatchObject({
      eventType: "INSERT",
      new: { id: row!.id, owner: frank, note: "private note" },
    });
    // rt_owned has replica identity full, so the filter matches the old row; but
    // deletes skip the RLS check, so only the key is disclosed.
    const deleted = { eventType: "DELETE", new: {}, old: { id: row!.id } };
    expect(filtered[1]).toMatchObject(deleted);
    expect(deletes).toEqual([expect.objectContaining(deleted)]);
  });

  it("sends hosted's error payload for a table without a primary key", async () => {
    const c = await client(vsn);
    const got: unknown[] = [];
    await subscribed(
      c.channel(topic("nokey")).on(
        "postgres_changes",
        { event: "INSERT", schema: "public", table: "rt_nokey" },
        (p) => got.push(p),
      ),
    );
    await sql`insert into public.rt_nokey (label) values ('x')`;
    await until(() => got.length >= 1, "the error payload");
    expect(got).toEqual([{
      schema: "public",
      table: "rt_nokey",
      commit_timestamp: null,
      eventType: "INSERT",
      new: {},
      old: {},
      errors: ["Error 400: Bad Request, no primary key"],
    }]);
  });

  it("closes the channel with a system error when its token expires", async () => {
    const c = await client(vsn, await tokenExpiringIn(2));
    const statuses: string[] = [];
    const systems: { message: string; status: string }[] = [];
    const channel = c.channel(topic("expiring")).on("system", {}, (p) => systems.push(p));
    channel.subscribe((status) => statuses.push(status));
    await until(() => statuses.includes("SUBSCRIBED"), "the join");
    await until(() => statuses.includes("CLOSED"), "the channel to close", 6000);
    expect(systems).toEqual([{
      extension: "system",
      status: "error",
      message: expect.stringMatching(/^Token has expired \d+ seconds ago$/),
      channel: channel.subTopic,
    }]);
  });

  it("re-authorises on an access_token update: a token that may see the row starts receiving it", async () => {
    const carol = randomUUID();
    const c = await client(vsn);
    const seen: string[] = [];
    const systems: { message: string }[] = [];
    const sentinels: string[] = [];
    const channel = await subscribed(
      c.channel(topic("token"))
        .on(
          "postgres_changes",
          { event: "INSERT", schema: "public", table: "rt_owned" },
          (p) => seen.push((p.new as { note: string }).note),
        )
        .on(
          "postgres_changes",
          { event: "INSERT", schema: "public", table: "rt_items" },
          (p) => sentinels.push((p.new as { body: string }).body),
        )
        .on("system", {}, (p) => systems.push(p)),
    );
    await until(() => systems.length >= 1, "Subscribed to PostgreSQL");
    const sentinel = randomUUID();
    await sql`insert into public.rt_owned (owner, note) values (${carol}, 'as anon')`;
    await sql`insert into public.rt_items (body) values (${sentinel})`;
    // Once the later sentinel is here, the row before it was judged under the anon token.
    await until(() => sentinels.includes(sentinel), "the sentinel");
    await c.realtime.setAuth(await userToken(carol));
    // Hosted re-subscribes the bindings with the new claims and says so again.
    await until(() => systems.length >= 2, "re-subscription");
    expect(systems[1]).toMatchObject({ status: "ok", message: "Subscribed to PostgreSQL" });
    await sql`insert into public.rt_owned (owner, note) values (${carol}, 'as carol')`;
    await until(() => seen.length >= 1, "carol's row");
    expect(seen).toEqual(["as carol"]);
    expect(channel.state).toBe("joined");
  });

  it("closes the channel with a system error when the updated token is invalid", async () => {
    const c = await client(vsn);
    const statuses: string[] = [];
    const systems: unknown[] = [];
    const channel = c.channel(topic("bad-token")).on("system", {}, (p) => systems.push(p));
    await new Promise<void>((resolve) =>
      channel.subscribe((status) => {
        statuses.push(status);
        if (status === "SUBSCRIBED") resolve();
      })
    );
    await c.realtime.setAuth("not-a-jwt");
    await until(() => statuses.includes("CLOSED"), "the channel to close");
    expect(systems).toEqual([{
      extension: "system",
      status: "error",
      message: "The token provided is not a valid JWT",
      channel: channel.subTopic,
    }]);
  });

  it("delivers realtime.send() to a broadcast subscriber, with the message id", async () => {
    const name = topic("db-broadcast");
    const c = await client(vsn);
    const got: unknown[] = [];
    await subscribed(c.channel(name).on("broadcast", { event: "*" }, (p) => got.push(p)));
    await sql`select realtime.send('{"hello": "world"}'::jsonb, 'greeting', ${name}, false)`;
    await until(() => got.length >= 1, "the broadcast");
    const [message] = await sql<{ id: string }[]>`
      select id::text from realtime.messages where topic = ${name}`;
    expect(got[0]).toEqual({
      type: "broadcast",
      event: "greeting",
      payload: { hello: "world", id: message!.id },
      meta: { id: message!.id },
    });
  });

  it("delivers realtime.send_binary() as bytes over vsn 2.0.0, and not at all over 1.0.0 (as hosted)", async () => {
    const name = topic("db-binary");
    const c = await client(vsn);
    const got: { event: string; payload: unknown }[] = [];
    await subscribed(c.channel(name).on("broadcast", { event: "*" }, (p) => got.push(p as never)));
    await sql`select realtime.send_binary('\\x0102ff'::bytea, 'bytes', ${name}, false)`;
    await sql`select realtime.send('{"after": true}'::jsonb, 'json', ${name}, false)`;
    await until(() => got.some((g) => g.event === "json"), "the JSON message after it");
    if (vsn === "2.0.0") {
      expect(got.map((g) => g.event)).toEqual(["bytes", "json"]);
      expect([...new Uint8Array(got[0]!.payload as ArrayBuffer)]).toEqual([1, 2, 255]);
    } else {
      expect(got.map((g) => g.event)).toEqual(["json"]);
    }
  });

  it("relays a client broadcast to other subscribers; self and ack as configured", async () => {
    const name = topic("chat");
    const sender = await client(vsn);
    const receiver = await client(vsn);
    const sent: unknown[] = [];
    const received: unknown[] = [];
    const quiet = await client(vsn);
    const quietSeen: unknown[] = [];
    const out = await subscribed(
      sender.channel(name, { config: { broadcast: { self: true, ack: true } } })
        .on("broadcast", { event: "msg" }, (p) => sent.push(p)),
    );
    await subscribed(
      receiver.channel(name).on("broadcast", { event: "msg" }, (p) => received.push(p)),
    );
    const noSelf = await subscribed(
      quiet.channel(name).on("broadcast", { event: "msg" }, (p) => quietSeen.push(p)),
    );
    expect(await out.send({ type: "broadcast", event: "msg", payload: { text: "hi" } })).toBe("ok");
    await until(
      () => sent.length >= 1 && received.length >= 1 && quietSeen.length >= 1,
      "relay",
    );
    const expected = { type: "broadcast", event: "msg", payload: { text: "hi" } };
    expect([sent[0], received[0], quietSeen[0]]).toEqual([expected, expected, expected]);
    // Without `self`, a sender does not hear itself; the others do.
    await noSelf.send({ type: "broadcast", event: "msg", payload: { text: "quiet" } });
    await until(() => received.length >= 2 && sent.length >= 2, "second relay");
    expect(quietSeen).toHaveLength(1);
    expect(received[1]).toEqual({ ...expected, payload: { text: "quiet" } });
  });

  it("private channels: refused without a policy, allowed with one, kept apart from public ones", async () => {
    await dropPrivatePolicies();
    const name = topic("private-room");
    const dave = randomUUID();
    const asDave = await client(vsn, await userToken(dave));
    const refused = asDave.channel(name, { config: { private: true } });
    expect(await subscribe(refused)).toEqual({
      status: "CHANNEL_ERROR",
      error: `Unauthorized: You do not have permissions to read from this Channel topic: ${name}`,
    });
    await asDave.removeChannel(refused);

    await sql.unsafe(`
      drop policy if exists rt_private_read on realtime.messages;
      create policy rt_private_read on realtime.messages for select to authenticated
        using (realtime.topic() like 'private-room-%' and auth.uid() is not null)`);
    const privateSeen: unknown[] = [];
    const publicSeen: unknown[] = [];
    await subscribed(
      asDave.channel(name, { config: { private: true } })
        .on("broadcast", { event: "*" }, (p) => privateSeen.push(p)),
    );
    const publicClient = await client(vsn);
    await subscribed(
      publicClient.channel(name).on("broadcast", { event: "*" }, (p) => publicSeen.push(p)),
    );
    await sql`select realtime.send('{"n": 1}'::jsonb, 'secret', ${name}, true)`;
    await sql`select realtime.send('{"n": 2}'::jsonb, 'open', ${name}, false)`;
    await until(() => privateSeen.length >= 1 && publicSeen.length >= 1, "one message each");
    expect(privateSeen[0]).toMatchObject({ event: "secret", payload: { n: 1 } });
    expect(publicSeen[0]).toMatchObject({ event: "open", payload: { n: 2 } });
  });

  it("private channels: a client broadcast needs the insert policy", async () => {
    await dropPrivatePolicies();
    const name = topic("private-room");
    const erin = randomUUID();
    await sql.unsafe(`
      drop policy if exists rt_private_read on realtime.messages;
      create policy rt_private_read on realtime.messages for select to authenticated
        using (realtime.topic() like 'private-room-%')`);
    const sender = await client(vsn, await userToken(erin));
    const listener = await client(vsn, await userToken(randomUUID()));
    const heard: unknown[] = [];
    const out = await subscribed(
      sender.channel(name, { config: { private: true, broadcast: { ack: true } } }),
    );
    await subscribed(
      listener.channel(name, { config: { private: true } }).on(
        "broadcast",
        { event: "*" },
        (p) => heard.push(p),
      ),
    );
    // No insert policy: hosted drops the message and does not acknowledge it.
    expect(
      await out.send({ type: "broadcast", event: "x", payload: { try: 1 } }, { timeout: 1500 }),
    )
      .toBe("timed out");
    await sql.unsafe(`
      drop policy if exists rt_private_write on realtime.messages;
      create policy rt_private_write on realtime.messages for insert to authenticated
        with check (realtime.topic() like 'private-room-%')`);
    // Policies are evaluated once per channel, as hosted caches them: rejoin to re-evaluate.
    await sender.removeChannel(out);
    const again = await subscribed(
      sender.channel(name, { config: { private: true, broadcast: { ack: true } } }),
    );
    expect(await again.send({ type: "broadcast", event: "x", payload: { try: 2 } })).toBe("ok");
    await until(() => heard.length >= 1, "the allowed broadcast");
    expect(heard).toEqual([{ type: "broadcast", event: "x", payload: { try: 2 } }]);
  });

  it("answers what it refuses or does not emulate with an error reply", async () => {
    const c = await client(vsn);
    const outcome = async (channel: RealtimeChannel) => {
      const result = await subscribe(channel);
      await c.removeChannel(channel);
      return result;
    };
    expect(
      await outcome(c.channel(topic("presence")).on("presence", { event: "sync" }, () => {})),
    ).toEqual({
      status: "CHANNEL_ERROR",
      error: expect.stringMatching(/^PresenceNotSupported: /),
    });
    expect(
      await outcome(
        c.channel(topic("bad-op")).on(
          "postgres_changes",
          { event: "*", schema: "public", table: "rt_items", filter: "n=near.5" },
          () => {},
        ),
      ),
    ).toEqual({
      status: "CHANNEL_ERROR",
      error: 'RealtimeDisabledForConfiguration: Error parsing `filter` params: ["near", "5"]',
    });
    expect(
      await outcome(
        c.channel(topic("bad-column")).on(
          "postgres_changes",
          { event: "*", schema: "public", table: "rt_items", filter: "nope=eq.5" },
          () => {},
        ),
      ),
    ).toMatchObject({
      status: "CHANNEL_ERROR",
      error: expect.stringContaining("invalid column for filter nope"),
    });
    expect(
      await outcome(
        c.channel(topic("unpublished")).on(
          "postgres_changes",
          { event: "*", schema: "public", table: "rt_unpublished" },
          () => {},
        ),
      ),
    ).toEqual({
      status: "CHANNEL_ERROR",
      error:
        "RealtimeDisabledForConfiguration: Unable to subscribe to changes with given parameters. Please check Realtime is enabled for the given connect parameters: [event: *, schema: public, table: rt_unpublished, filters: [], select: nil]",
    });
  });

  it("refuses a join with an expired token", async () => {
    const c = await client(vsn, await expiredToken());
    const result = await subscribe(c.channel(topic("expired")));
    expect(result.status).toBe("CHANNEL_ERROR");
    expect(result.error).toMatch(/^InvalidJWTToken: Token has expired \d+ seconds ago$/);
    await c.removeAllChannels();
  });
});

// ---------------------------------------------------------------- parsing (pure)

describe("postgres_changes binding parsing, as hosted parses it", () => {
  it.each([
    [{ schema: "public", table: "m", filter: "subject=eq.hey" }, [["subject", "eq", "hey", false]]],
    [{ schema: "public", table: "m", filter: "subject=in.(hidee,ho)" }, [[
      "subject",
      "in",
      "{hidee,ho}",
      false,
    ]]],
    [{ schema: "public", table: "m", filter: "subject=not.like.hey%" }, [[
      "subject",
      "like",
      "hey%",
      true,
    ]]],
    [{ schema: "public", table: "m", filter: "id=gt.0,id=lt.100" }, [["id", "gt", "0", false], [
      "id",
      "lt",
      "100",
      false,
    ]]],
    [{ schema: "public", table: "m", filter: 'name=eq."a,b"' }, [["name", "eq", "a,b", false]]],
    [{ schema: "public", table: "m", filter: "   " }, []],
  ])("%j", (raw, filters) => {
    const parsed = parseSubscriptionParams(raw);
    expect(parsed.ok && parsed.params.filters.map((f) => [f.column, f.op, f.value, f.negate]))
      .toEqual(filters);
  });

  it.each([
    [{ schema: "public" }, { schema: "public", table: "*" }],
    [{ table: "m" }, { schema: "public", table: "m" }],
    [{ event: "update", schema: "s", table: "t" }, { action: "UPDATE", schema: "s", table: "t" }],
  ])("defaults %j", (raw, expected) => {
    const parsed = parseSubscriptionParams(raw);
    expect(parsed.ok && parsed.params).toMatchObject(expected);
  });

  it.each([
    [
      { schema: "public", table: "m", filter: "subject=foo.hey" },
      'Error parsing `filter` params: ["foo", "hey"]',
    ],
    [
      { schema: "public", table: "m", filter: "undefined" },
      'Error parsing `filter` params: ["undefined"]',
    ],
    [
      { schema: "public", table: "m", filter: "a=eq.1,,b=eq.2" },
      "Error parsing `filter` params: filter must not contain empty segments (check for extra commas)",
    ],
    [
      { schema: "public", table: "m", filter: "a=in.1,2" },
      "Error parsing `filter` params: `in` filter value must be wrapped by parentheses",
    ],
    [
      {},
      "No subscription params provided. Please provide at least a `schema` or `table` to subscribe to: %{}",
    ],
  ])("refuses %j", (raw, error) => {
    expect(parseSubscriptionParams(raw)).toEqual({ ok: false, error });
  });

  it("gives identical bindings the same id, in phash2's range", () => {
    const a = bindingId({ event: "*", schema: "public", table: "t" });
    expect(bindingId({ table: "t", schema: "public", event: "*" })).toBe(a);
    expect(bindingId({ event: "INSERT", schema: "public", table: "t" })).not.toBe(a);
    expect(a).toBeGreaterThanOrEqual(0);
    expect(a).toBeLessThan(2 ** 27);
  });
});
