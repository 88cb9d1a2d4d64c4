-- cutover: what the flags API needs from the schema.
--
-- 1. Seeding must not move the config version when there is nothing to seed.
--    Every function instance calls cutover.seed_config() on first use; its
--    `insert ... on conflict do nothing` statements fire the statement-level
--    version triggers even when they insert no row, so each cold start bumped
--    the version twice. That made every instance reload its config for nothing
--    and, worse, turned an operator's `expected_version` stale (409) without
--    any change to flags or settings. Same contract, same signature; the
--    inserts now run only when a category or setting is actually missing.
-- 2. The audit log's filter by actor (newest first) is served by an index.
--
-- Safe to re-apply: `create or replace`, `if not exists`.

create or replace function cutover.seed_config(defaults jsonb)
returns void
language plpgsql
as $$
begin
  perform set_config('cutover.actor', 'system:seed', true);
  perform set_config('cutover.reason', 'seeded from environment defaults', true);
  if exists (
    select 1 from jsonb_object_keys(coalesce(defaults -> 'categories', '{}'::jsonb)) as k(category)
    where not exists (select 1 from cutover.category_flags f where f.category = k.category)
  ) then
    insert into cutover.category_flags (category, enabled, percentage, adapters, delivery_mode, checksum_alg)
    select c.key, (c.value ->> 'enabled')::boolean, (c.value ->> 'percentage')::numeric,
           array(select jsonb_array_elements_text(c.value -> 'adapters')),
           c.value ->> 'delivery_mode', c.value ->> 'checksum_alg'
    from jsonb_each(defaults -> 'categories') as c
    on conflict (category) do nothing;
  end if;
  if exists (
    select 1 from jsonb_object_keys(coalesce(defaults -> 'settings', '{}'::jsonb)) as k(key)
    where not exists (select 1 from cutover.settings s where s.key = k.key)
  ) then
    insert into cutover.settings (key, value)
    select s.key, s.value from jsonb_each(defaults -> 'settings') as s
    on conflict (key) do nothing;
  end if;
  perform set_config('cutover.actor', '', true);
  perform set_config('cutover.reason', '', true);
end
$$;

create index if not exists flag_audit_actor on cutover.flag_audit (actor, id desc);
