-- Grafana's read-only role (observability/compose/grafana-reader.sh) reads the reporting views
-- of migration 007 and nothing else. The script grants them when they exist; when it ran first
-- (before vigil's migrations had created them), this grants them now. Where the role does not
-- exist (development, tests) it does nothing. A view runs with its owner's rights: the role
-- needs no grant on the tables behind it.
do $$
begin
  if exists (select from pg_roles where rolname = 'vigil_grafana') then
    grant usage on schema reporting to vigil_grafana;
    grant select on reporting.dlq_summary, reporting.dlq_latest to vigil_grafana;
  end if;
end
$$;
