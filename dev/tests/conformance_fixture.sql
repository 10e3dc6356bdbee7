-- Fixture for the gateway's conformance suite: the shapes PostgREST's
-- documentation uses (tables, a view, RLS, functions of every return kind).
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'anon') THEN CREATE ROLE anon NOLOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticated') THEN CREATE ROLE authenticated NOLOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'service_role') THEN CREATE ROLE service_role NOLOGIN BYPASSRLS; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticator') THEN CREATE ROLE authenticator LOGIN NOINHERIT; END IF;
END $$;
GRANT anon, authenticated, service_role TO authenticator;

CREATE SCHEMA test;
CREATE SCHEMA other;
GRANT USAGE ON SCHEMA test, other TO anon, authenticated, service_role;

CREATE TABLE test.items (
  id integer PRIMARY KEY, name text NOT NULL, qty integer, tags text[], data jsonb, active boolean,
  created timestamptz NOT NULL DEFAULT '2026-01-01T00:00:00Z');
INSERT INTO test.items (id, name, qty, tags, data, active) VALUES
  (1, 'apple', 5, '{red,fruit}', '{"a": {"b": 1}}', true),
  (2, 'banana', NULL, '{yellow,fruit}', '{"a": {"b": 2}}', false),
  (3, 'cherry', 20, '{red}', '{}', true),
  (4, 'date, dried', 0, '{}', NULL, NULL),
  (5, 'Eggplant', 7, '{purple,veg}', '{"a": {"b": 5}}', true);
CREATE VIEW test.active_items AS SELECT id, name FROM test.items WHERE active;
GRANT SELECT ON test.items, test.active_items TO anon, authenticated, service_role;

CREATE TABLE test.notes (id integer PRIMARY KEY, body text, tag text UNIQUE, n integer NOT NULL DEFAULT 0);
GRANT SELECT ON test.notes TO anon;
GRANT ALL ON test.notes TO authenticated, service_role;
CREATE TABLE test.children (id integer PRIMARY KEY, note_id integer REFERENCES test.notes (id));
GRANT ALL ON test.children TO authenticated, service_role;

CREATE TABLE test.private (id integer PRIMARY KEY, owner text NOT NULL, secret text);
ALTER TABLE test.private ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON test.private
  USING (owner = current_setting('request.jwt.claims', true)::json->>'sub');
GRANT SELECT ON test.private TO authenticated;
INSERT INTO test.private VALUES (1, 'alice', 'a1'), (2, 'bob', 'b1'), (3, 'alice', 'a2');

CREATE FUNCTION test.add(a integer, b integer) RETURNS integer LANGUAGE sql IMMUTABLE AS $$ SELECT a + b $$;
CREATE FUNCTION test.hello() RETURNS text LANGUAGE sql STABLE AS $$ SELECT 'hi'::text $$;
CREATE FUNCTION test.items_over(min integer DEFAULT 0) RETURNS SETOF test.items LANGUAGE sql STABLE
  AS $$ SELECT * FROM test.items WHERE qty > min ORDER BY id $$;
CREATE FUNCTION test.numbers(n integer) RETURNS SETOF integer LANGUAGE sql IMMUTABLE
  AS $$ SELECT generate_series(1, n) $$;
CREATE FUNCTION test.pair(x integer, OUT doubled integer, OUT label text) LANGUAGE sql IMMUTABLE
  AS $$ SELECT x * 2, 'n' || x $$;
CREATE FUNCTION test.noop() RETURNS void LANGUAGE sql VOLATILE AS $$ SELECT $$;
CREATE FUNCTION test.bump(note integer) RETURNS integer LANGUAGE sql VOLATILE
  AS $$ UPDATE test.notes SET n = n + 1 WHERE id = note RETURNING n $$;
CREATE FUNCTION test.fail() RETURNS void LANGUAGE plpgsql
  AS $$ BEGIN RAISE EXCEPTION 'nope' USING DETAIL = 'some detail', HINT = 'some hint'; END $$;
CREATE FUNCTION test.pay() RETURNS void LANGUAGE plpgsql
  AS $$ BEGIN RAISE SQLSTATE 'PT402' USING MESSAGE = 'payment required'; END $$;
CREATE FUNCTION test.whoami() RETURNS json LANGUAGE sql STABLE AS $$
  SELECT json_build_object('role', current_user, 'method', current_setting('request.method'),
    'path', current_setting('request.path'), 'sub', current_setting('request.jwt.claims')::json->>'sub',
    'claim_role', current_setting('request.jwt.claims')::json->>'role',
    'header', current_setting('request.headers')::json->>'x-test',
    'search_path', current_setting('search_path'))
$$;
CREATE FUNCTION test.teapot() RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('response.status', '418', true);
  PERFORM set_config('response.headers', '[{"X-Custom": "yes"}]', true);
  RETURN 'short and stout';
END $$;
CREATE FUNCTION test.echo(jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$ SELECT $1 $$;
CREATE FUNCTION test.tag_json(doc jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE
  AS $$ SELECT jsonb_build_object('got', doc) $$;
CREATE FUNCTION test.pre() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('request.headers', true)::json->>'x-block' = 'yes' THEN
    RAISE SQLSTATE 'PT403' USING MESSAGE = 'blocked by pre-request';
  END IF;
END $$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA test TO anon, authenticated, service_role;

CREATE FUNCTION other.ping() RETURNS text LANGUAGE sql STABLE AS $$ SELECT 'other'::text $$;
GRANT EXECUTE ON FUNCTION other.ping() TO anon, authenticated, service_role;

-- Arguments PostgREST reads from the JSON body by their types: arrays,
-- composites, variadic; a volatile set-returning function to count.
CREATE TYPE test.point2 AS (x integer, y integer);
CREATE FUNCTION test.sum_ids(ids integer[]) RETURNS integer LANGUAGE sql IMMUTABLE
  AS $$ SELECT sum(x)::integer FROM unnest(ids) x $$;
CREATE FUNCTION test.norm1(p test.point2) RETURNS integer LANGUAGE sql IMMUTABLE
  AS $$ SELECT abs(p.x) + abs(p.y) $$;
CREATE FUNCTION test.vsum(VARIADIC nums integer[]) RETURNS integer LANGUAGE sql IMMUTABLE
  AS $$ SELECT sum(x)::integer FROM unnest(nums) x $$;
CREATE FUNCTION test.items_named(names text[]) RETURNS SETOF test.items LANGUAGE sql STABLE
  AS $$ SELECT * FROM test.items WHERE name = ANY (names) ORDER BY id $$;
CREATE FUNCTION test.bump_all(ids integer[]) RETURNS SETOF test.notes LANGUAGE sql VOLATILE
  AS $$ UPDATE test.notes SET n = n + 1 WHERE id = ANY (ids) RETURNING * $$;
CREATE FUNCTION test.app_setting(name text) RETURNS text LANGUAGE sql STABLE
  AS $$ SELECT current_setting('app.settings.' || name, true) $$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA test TO anon, authenticated, service_role;

-- Full-text search, on a tsvector column and on a text column.
CREATE TABLE test.docs (
  id integer PRIMARY KEY, body text NOT NULL,
  tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', body)) STORED);
INSERT INTO test.docs (id, body) VALUES
  (1, 'The fat cats ate the rats'), (2, 'A cat sat on the mat'), (3, 'Dogs chase cats'), (4, 'Fat rats run');
GRANT SELECT ON test.docs TO anon, authenticated, service_role;

-- Planned counts read the planner's estimate: make it the real count.
ANALYZE test.items;
