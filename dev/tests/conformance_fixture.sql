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

-- Resource embedding, with the tables of PostgREST's documentation.
CREATE TABLE test.directors (id integer PRIMARY KEY, first_name text, last_name text);
CREATE TABLE test.films (
  id integer PRIMARY KEY, director_id integer REFERENCES test.directors (id), title text, year integer);
CREATE TABLE test.technical_specs (film_id integer PRIMARY KEY REFERENCES test.films (id), camera text);
CREATE TABLE test.actors (id integer PRIMARY KEY, first_name text, last_name text);
CREATE TABLE test.roles (
  film_id integer REFERENCES test.films (id), actor_id integer REFERENCES test.actors (id), character text,
  PRIMARY KEY (film_id, actor_id));
CREATE TABLE test.competitions (id integer PRIMARY KEY, name text, year integer);
CREATE TABLE test.nominations (
  competition_id integer REFERENCES test.competitions (id), film_id integer REFERENCES test.films (id), rank integer,
  PRIMARY KEY (competition_id, film_id));
CREATE TABLE test.addresses (id integer PRIMARY KEY, name text);
CREATE TABLE test.orders (
  id integer PRIMARY KEY, name text, billing_address_id integer, shipping_address_id integer,
  CONSTRAINT billing FOREIGN KEY (billing_address_id) REFERENCES test.addresses (id),
  CONSTRAINT shipping FOREIGN KEY (shipping_address_id) REFERENCES test.addresses (id));
INSERT INTO test.directors VALUES
  (1, 'Quentin', 'Tarantino'), (2, 'Louis', 'Lumière'), (3, 'Georges', 'Méliès'), (4, 'Nobody', 'Yet');
INSERT INTO test.films VALUES
  (1, 1, 'Pulp Fiction', 1994), (2, 1, 'Reservoir Dogs', 1992),
  (3, 2, 'Workers Leaving The Lumière Factory In Lyon', 1895), (4, 3, 'The Haunted Castle', 1896),
  (5, NULL, 'Orphan', 2000);
INSERT INTO test.technical_specs VALUES (1, 'Arriflex 35-III'), (2, 'Panavision');
INSERT INTO test.actors VALUES
  (1, 'John', 'Travolta'), (2, 'Uma', 'Thurman'), (3, 'Harvey', 'Keitel'), (4, 'Jehanne', 'd''Alcy'),
  (5, 'Samuel', 'Jackson');
INSERT INTO test.roles VALUES
  (1, 1, 'Vincent Vega'), (1, 2, 'Mia Wallace'), (1, 5, 'Jules'), (2, 3, 'Mr. White'), (4, 4, 'The Woman');
INSERT INTO test.competitions VALUES (1, 'Cannes', 1994), (2, 'Oscars', 1995);
INSERT INTO test.nominations VALUES (1, 1, 1), (2, 1, 2), (2, 2, 5);
INSERT INTO test.addresses VALUES (1, 'home'), (2, 'work');
INSERT INTO test.orders VALUES (1, 'Water Filter', 1, 2), (2, 'Coffee Machine', 1, 1);
GRANT SELECT ON test.directors, test.films, test.technical_specs, test.actors, test.roles, test.competitions,
  test.nominations, test.addresses, test.orders TO anon, authenticated;
GRANT ALL ON test.directors, test.films, test.technical_specs, test.actors, test.roles, test.competitions,
  test.nominations, test.addresses, test.orders TO service_role;
CREATE FUNCTION test.getallfilms() RETURNS SETOF test.films LANGUAGE sql STABLE AS $$ SELECT * FROM test.films $$;
GRANT EXECUTE ON FUNCTION test.getallfilms() TO anon, authenticated, service_role;

-- The IDE's shape: projects, their pages, the pages' components (a
-- composite foreign key), each row visible to its project's owner only.
CREATE TABLE test.projects (id integer PRIMARY KEY, owner text NOT NULL, name text);
CREATE TABLE test.pages (
  project_id integer NOT NULL REFERENCES test.projects (id), page_id integer NOT NULL, title text,
  PRIMARY KEY (project_id, page_id));
CREATE TABLE test.components (
  project_id integer NOT NULL, page_id integer NOT NULL, id text NOT NULL, kind text,
  PRIMARY KEY (project_id, page_id, id),
  FOREIGN KEY (project_id, page_id) REFERENCES test.pages (project_id, page_id));
ALTER TABLE test.projects ENABLE ROW LEVEL SECURITY;
ALTER TABLE test.pages ENABLE ROW LEVEL SECURITY;
ALTER TABLE test.components ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON test.projects USING (owner = current_setting('request.jwt.claims', true)::json->>'sub');
CREATE POLICY own ON test.pages USING (EXISTS (SELECT 1 FROM test.projects p WHERE p.id = project_id));
CREATE POLICY own ON test.components USING (EXISTS (SELECT 1 FROM test.projects p WHERE p.id = project_id));
GRANT SELECT ON test.projects, test.pages, test.components TO authenticated;
INSERT INTO test.projects VALUES (1, 'alice', 'Alice''s app'), (2, 'bob', 'Bob''s app');
INSERT INTO test.pages VALUES (1, 1, 'Home'), (1, 2, 'About'), (2, 1, 'Bob home');
INSERT INTO test.components VALUES
  (1, 1, 'c1', 'text'), (1, 1, 'c2', 'button'), (1, 2, 'c3', 'image'), (2, 1, 'c9', 'text');

-- Every column has a default: {} inserts one row of defaults.
CREATE TABLE test.docs_defaults (id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, label text NOT NULL DEFAULT 'none');
GRANT ALL ON test.docs_defaults TO service_role;
