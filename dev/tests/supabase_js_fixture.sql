-- Fixture for supabase_js.rs: the IDE's tables as a Supabase project has
-- them (public.projects, public.pages, public.components, shaped like
-- migrations/0001_baseline.sql), each row readable and writable by its
-- project's owner only, through auth.uid() as Supabase defines it.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'anon') THEN CREATE ROLE anon NOLOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticated') THEN CREATE ROLE authenticated NOLOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'service_role') THEN CREATE ROLE service_role NOLOGIN BYPASSRLS; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticator') THEN CREATE ROLE authenticator LOGIN NOINHERIT; END IF;
END $$;
GRANT anon, authenticated, service_role TO authenticator;

CREATE SCHEMA auth;
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;
CREATE FUNCTION auth.uid() RETURNS text LANGUAGE sql STABLE
  AS $$ SELECT nullif(current_setting('request.jwt.claims', true)::json->>'sub', '') $$;

CREATE TABLE public.projects (
  id         uuid PRIMARY KEY,
  name       text,
  owner_id   text,
  source     text NOT NULL DEFAULT 'figma-compat',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE public.pages (
  project_id uuid NOT NULL REFERENCES public.projects (id) ON DELETE CASCADE,
  page_id    integer NOT NULL,
  figma_id   text NOT NULL,
  name       text,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project_id, page_id),
  UNIQUE (project_id, figma_id)
);
CREATE TABLE public.components (
  project_id    uuid NOT NULL,
  page_id       integer NOT NULL,
  id            text NOT NULL,
  name          text,
  type          text NOT NULL,
  dx            double precision NOT NULL DEFAULT 0,
  dy            double precision NOT NULL DEFAULT 0,
  width         double precision NOT NULL DEFAULT 0,
  height        double precision NOT NULL DEFAULT 0,
  version       text NOT NULL DEFAULT '1.0',
  index_in_page integer NOT NULL,
  options       jsonb NOT NULL DEFAULT '{}'::jsonb,
  updated_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project_id, page_id, id),
  FOREIGN KEY (project_id, page_id) REFERENCES public.pages (project_id, page_id) ON DELETE CASCADE
);

ALTER TABLE public.projects ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.pages ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.components ENABLE ROW LEVEL SECURITY;
CREATE POLICY owner_all ON public.projects TO authenticated
  USING (owner_id = auth.uid()) WITH CHECK (owner_id = auth.uid());
CREATE POLICY owner_all ON public.pages TO authenticated
  USING (EXISTS (SELECT 1 FROM public.projects p WHERE p.id = project_id))
  WITH CHECK (EXISTS (SELECT 1 FROM public.projects p WHERE p.id = project_id));
CREATE POLICY owner_all ON public.components TO authenticated
  USING (EXISTS (SELECT 1 FROM public.projects p WHERE p.id = project_id))
  WITH CHECK (EXISTS (SELECT 1 FROM public.projects p WHERE p.id = project_id));
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.projects, public.pages, public.components TO authenticated, service_role;

-- The runtime's lookup of components by id: SECURITY INVOKER, so row
-- level security still decides.
CREATE FUNCTION public.components_by_ids(ids text[]) RETURNS SETOF public.components
  LANGUAGE sql STABLE AS $$ SELECT * FROM public.components WHERE id = ANY (ids) ORDER BY id $$;
GRANT EXECUTE ON FUNCTION public.components_by_ids(text[]) TO authenticated, service_role;

-- Alice owns a project of two pages and three components; Bob one page
-- and one component, under ids that collide with Alice's on purpose.
INSERT INTO public.projects (id, name, owner_id) VALUES
  ('11111111-1111-4111-8111-111111111111', 'Alice''s app', 'alice'),
  ('22222222-2222-4222-8222-222222222222', 'Bob''s app', 'bob');
INSERT INTO public.pages (project_id, page_id, figma_id, name) VALUES
  ('11111111-1111-4111-8111-111111111111', 1, '0:1', 'Home'),
  ('11111111-1111-4111-8111-111111111111', 2, '0:2', 'About'),
  ('22222222-2222-4222-8222-222222222222', 1, '0:1', 'Bob home');
INSERT INTO public.components (project_id, page_id, id, name, type, index_in_page) VALUES
  ('11111111-1111-4111-8111-111111111111', 1, 'c1', 'Title', 'text', 0),
  ('11111111-1111-4111-8111-111111111111', 1, 'c2', 'Go', 'button', 1),
  ('11111111-1111-4111-8111-111111111111', 2, 'c3', 'Logo', 'image', 0),
  ('22222222-2222-4222-8222-222222222222', 1, 'c1', 'Bob title', 'text', 0);
