-- The `realtime` schema as hosted Supabase provides it to a project (the parts
-- migrations and functions rely on): the `realtime.messages` table that
-- Broadcast-from-the-database writes to and private-channel policies are
-- written on, `realtime.topic()`, `realtime.send()`, `realtime.send_binary()`
-- and `realtime.broadcast_changes()` with hosted's signatures and behaviour.
--
-- Applied by the local stack before the project's migrations, on every start:
-- every statement is idempotent. Differences from hosted (documented in
-- local/realtime/README.md): `realtime.messages` is a plain table, not
-- partitioned by day, and the tables hosted Realtime keeps for its own
-- bookkeeping (`realtime.subscription`, `realtime.schema_migrations`) are absent.

create schema if not exists realtime;
grant usage on schema realtime to anon, authenticated, service_role;

create table if not exists realtime.messages (
  topic text not null,
  extension text not null,
  payload jsonb,
  event text,
  private boolean default false,
  updated_at timestamp without time zone not null default now(),
  inserted_at timestamp without time zone not null default now(),
  id uuid not null default gen_random_uuid(),
  binary_payload bytea,
  constraint messages_payload_exclusive check (payload is null or binary_payload is null),
  constraint messages_pkey primary key (id, inserted_at)
);

-- As hosted: RLS on and no policy, so only what a project's own policies allow
-- gets through (private channels are authorised against these policies).
alter table realtime.messages enable row level security;

create index if not exists messages_inserted_at_topic_index
  on realtime.messages (inserted_at desc, topic)
  where extension = 'broadcast' and private is true;

grant insert, select, update on table realtime.messages to anon, authenticated, service_role;

-- The channel topic being authorised. The local Realtime server sets the
-- `realtime.topic` setting (transaction-local) before it evaluates policies,
-- and realtime.send() sets it for the insert it makes, so policies can say
-- `realtime.topic() = ...`.
create or replace function realtime.topic()
returns text
language sql
stable
as $$
  select nullif(current_setting('realtime.topic', true), '')::text;
$$;

-- Broadcast `payload` as `event` to the subscribers of channel `topic`.
-- Like hosted: the payload gains an `id` (the message's uuid) unless it has one,
-- failures are reported as a WARNING instead of aborting the caller's
-- transaction, and the message is delivered only if the transaction commits.
create or replace function realtime.send(
  payload jsonb,
  event text,
  topic text,
  private boolean default true
)
returns void
language plpgsql
as $$
declare
  message_id uuid := gen_random_uuid();
begin
  begin
    perform set_config('realtime.topic', topic, true);
    insert into realtime.messages (id, payload, event, topic, private, extension)
    values (
      message_id,
      case when payload ? 'id' then payload else payload || jsonb_build_object('id', message_id) end,
      event,
      topic,
      private,
      'broadcast'
    );
  exception when others then
    raise warning 'WarnSendingBroadcastMessage: %', sqlerrm;
  end;
end;
$$;

-- The same for a binary payload (delivered as a binary broadcast frame).
create or replace function realtime.send_binary(
  payload bytea,
  event text,
  topic text,
  private boolean default true
)
returns void
language plpgsql
as $$
begin
  begin
    perform set_config('realtime.topic', topic, true);
    insert into realtime.messages (id, binary_payload, event, topic, private, extension)
    values (gen_random_uuid(), payload, event, topic, private, 'broadcast');
  exception when others then
    raise warning 'WarnSendingBroadcastMessage: %', sqlerrm;
  end;
end;
$$;

-- For row-level triggers: broadcasts `{old_record, record, operation, table,
-- schema}` on a private channel, as hosted's realtime.broadcast_changes does.
create or replace function realtime.broadcast_changes(
  topic_name text,
  event_name text,
  operation text,
  table_name text,
  table_schema text,
  new record,
  old record,
  level text default 'ROW'
)
returns void
language plpgsql
as $$
begin
  if level = 'STATEMENT' then
    raise exception 'function can only be triggered for each row, not for each statement';
  end if;
  if operation not in ('INSERT', 'UPDATE', 'DELETE') then
    raise exception 'Unexpected operation type: %', operation;
  end if;
  perform realtime.send(
    jsonb_build_object(
      'old_record', old,
      'record', new,
      'operation', operation,
      'table', table_name,
      'schema', table_schema
    ),
    event_name,
    topic_name
  );
exception when others then
  raise exception 'Failed to process the row: %', sqlerrm;
end;
$$;

grant execute on function realtime.topic() to anon, authenticated, service_role;

-- Hosted Realtime streams realtime.messages through its own publication; the
-- local server subscribes to it together with supabase_realtime.
do $$
begin
  if not exists (
    select 1 from pg_publication where pubname = 'supabase_realtime_messages_publication'
  ) then
    create publication supabase_realtime_messages_publication for table realtime.messages;
  end if;
end
$$;
