-- Applied once, to a fresh local database (and by `supabase db reset`).
-- Settings and flags are seeded by the functions from their environment
-- defaults (DUAL_WRITE_*, ADAPTER_*, CIRCUIT_BREAKER_*); classification rules
-- come with the migrations. Nothing else is needed to start.
select 1;
