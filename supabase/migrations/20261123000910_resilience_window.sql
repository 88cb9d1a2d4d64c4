-- cutover: the circuit breakers' judged window gets its own start (issue 6).
--
-- cutover.breaker_state.closed_at is the start of the dual-write restore ramp
-- (a recovery, half-open → closed). The window the breaker judges must also
-- restart at an operator's forced close or a reset, which must not start a
-- ramp: window_from holds that start. Calls before it are not judged, so
-- failures from before a recovery or a reset cannot re-open the breaker.
-- Safe to re-apply.

alter table cutover.breaker_state add column if not exists window_from timestamptz;
update cutover.breaker_state set window_from = closed_at
where window_from is null and closed_at is not null;
