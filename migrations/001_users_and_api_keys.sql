-- Users and their API keys. A key is stored only as the SHA-256 of the secret.
create table users (
  id uuid primary key default gen_random_uuid(),
  email text not null,
  name text not null,
  created_at timestamptz not null default now()
);
create unique index users_email_key on users (lower(email));
create index users_created_at_id on users (created_at, id);

create table api_keys (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references users (id) on delete cascade,
  key_hash text not null unique,
  key_prefix text not null,
  role text not null check (role in ('admin', 'user')),
  label text,
  created_at timestamptz not null default now(),
  last_used_at timestamptz,
  revoked_at timestamptz
);
create index api_keys_user_id on api_keys (user_id, created_at);
