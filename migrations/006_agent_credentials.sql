-- A remote agent's credentials, sent as the Authorization header of every call: URLs with
-- user:password@ are refused, and this column is never returned by the API (write-only).
alter table agents add column authorization_header text;
