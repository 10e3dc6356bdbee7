-- figma-compat's results for a project reach the application tables through
-- an outbox: the request writes cogo.project_updates in one statement, and a
-- projection (the cron, and right after the request) materialises the rows
-- into public.projects, public.pages and public.components, idempotently.
-- A failing row is retried after 2^retries minutes.

CREATE TABLE public.projects (
  id         uuid PRIMARY KEY,
  name       text,
  owner_id   text,
  source     text NOT NULL DEFAULT 'figma-compat',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- CreateGo numbers the pages of a project; figma_id is the Figma page the
-- numbers stay attached to.
CREATE TABLE public.pages (
  project_id uuid NOT NULL REFERENCES public.projects (id) ON DELETE CASCADE,
  page_id    integer NOT NULL,
  figma_id   text NOT NULL,
  name       text,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project_id, page_id),
  UNIQUE (project_id, figma_id)
);

-- CreateGo component rows, as the IDE and runtime read them.
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
  group_id      text,
  is_lib_comp   boolean,
  updated_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project_id, page_id, id),
  FOREIGN KEY (project_id, page_id) REFERENCES public.pages (project_id, page_id) ON DELETE CASCADE
);

ALTER TABLE public.projects ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.pages ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.components ENABLE ROW LEVEL SECURITY;
CREATE POLICY projects_owner_reads ON public.projects FOR SELECT TO authenticated
  USING (owner_id = current_setting('request.jwt.claims', true)::json->>'sub');
CREATE POLICY pages_owner_reads ON public.pages FOR SELECT TO authenticated
  USING (EXISTS (SELECT 1 FROM public.projects p WHERE p.id = project_id));
CREATE POLICY components_owner_reads ON public.components FOR SELECT TO authenticated
  USING (EXISTS (SELECT 1 FROM public.projects p WHERE p.id = project_id));
GRANT SELECT ON public.projects, public.pages, public.components TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.projects, public.pages, public.components TO service_role;

CREATE TABLE cogo.project_updates (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  occurred_at     timestamptz NOT NULL DEFAULT now(),
  project_uuid    uuid NOT NULL,
  project_id      text NOT NULL,
  source          text NOT NULL DEFAULT 'figma-compat',
  event_type      text NOT NULL CHECK (event_type IN ('project.upsert', 'page.upsert', 'component.upsert',
                                                      'actionflow.upsert', 'symbol.upsert')),
  payload         jsonb NOT NULL,
  status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'processing', 'failed', 'done')),
  retries         integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  trace_id        text,
  owner_id        text,
  last_error      text
);
CREATE INDEX project_updates_due_idx ON cogo.project_updates (next_attempt_at, id) WHERE status IN ('pending', 'failed');
GRANT SELECT, INSERT, UPDATE, DELETE ON cogo.project_updates TO service_role;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA cogo TO service_role;

-- A conversion for a project: the project, then the page with its rows.
CREATE FUNCTION cogo.record_project_update(
  p_project uuid, p_trace text, p_owner text, p_page jsonb, p_rows jsonb)
RETURNS jsonb
  LANGUAGE sql AS $$
  WITH written AS (
    INSERT INTO cogo.project_updates (project_uuid, project_id, event_type, payload, trace_id, owner_id)
    VALUES (p_project, p_project::text, 'project.upsert', '{}'::jsonb, p_trace, p_owner),
           (p_project, p_project::text, 'page.upsert', jsonb_build_object('page', p_page, 'rows', p_rows), p_trace, p_owner)
    RETURNING id
  )
  SELECT jsonb_build_object('ids', jsonb_agg(id ORDER BY id)) FROM written
$$;

CREATE FUNCTION cogo.apply_project_update(u cogo.project_updates) RETURNS void
  LANGUAGE plpgsql AS $$
DECLARE
  page_no integer;
  figma_page text := coalesce(nullif(u.payload #>> '{page,id}', ''), 'default');
BEGIN
  INSERT INTO public.projects AS p (id, owner_id, source)
  VALUES (u.project_uuid, u.owner_id, u.source)
  ON CONFLICT (id) DO UPDATE SET updated_at = now(), owner_id = coalesce(p.owner_id, excluded.owner_id);
  IF u.event_type <> 'page.upsert' THEN
    RETURN;
  END IF;
  SELECT page_id INTO page_no FROM public.pages WHERE project_id = u.project_uuid AND figma_id = figma_page;
  IF page_no IS NULL THEN
    SELECT coalesce(max(page_id), 0) + 1 INTO page_no FROM public.pages WHERE project_id = u.project_uuid;
  END IF;
  INSERT INTO public.pages AS pg (project_id, page_id, figma_id, name)
  VALUES (u.project_uuid, page_no, figma_page, u.payload #>> '{page,name}')
  ON CONFLICT (project_id, page_id) DO UPDATE SET name = excluded.name, updated_at = now();
  INSERT INTO public.components AS c (project_id, page_id, id, name, type, dx, dy, width, height, version,
                                      index_in_page, options, group_id, is_lib_comp)
  SELECT u.project_uuid, page_no, r.id, r.name, r.type, r.dx, r.dy, r.width, r.height, coalesce(r.version, '1.0'),
         r.index_in_page, coalesce(r.options, '{}'::jsonb), r.group_id, r.is_lib_comp
  FROM jsonb_to_recordset(u.payload -> 'rows') AS r(id text, name text, type text, dx double precision,
       dy double precision, width double precision, height double precision, version text, index_in_page integer,
       options jsonb, group_id text, is_lib_comp boolean)
  ON CONFLICT (project_id, page_id, id) DO UPDATE SET
    name = excluded.name, type = excluded.type, dx = excluded.dx, dy = excluded.dy, width = excluded.width,
    height = excluded.height, version = excluded.version, index_in_page = excluded.index_in_page,
    options = excluded.options, group_id = excluded.group_id, is_lib_comp = excluded.is_lib_comp, updated_at = now();
  -- The page is what this update says it is: components it no longer has go.
  DELETE FROM public.components c
  WHERE c.project_id = u.project_uuid AND c.page_id = page_no
    AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(u.payload -> 'rows') r WHERE r ->> 'id' = c.id);
END
$$;

-- Applies due outbox rows, oldest first; concurrent runs take disjoint rows.
CREATE FUNCTION cogo.project_updates_apply(p_limit integer DEFAULT 50) RETURNS jsonb
  LANGUAGE plpgsql AS $$
DECLARE
  u cogo.project_updates;
  done integer := 0;
  failed integer := 0;
BEGIN
  FOR u IN
    SELECT * FROM cogo.project_updates
    WHERE status IN ('pending', 'failed') AND next_attempt_at <= now()
    ORDER BY id LIMIT p_limit
    FOR UPDATE SKIP LOCKED
  LOOP
    BEGIN
      PERFORM cogo.apply_project_update(u);
      UPDATE cogo.project_updates SET status = 'done', last_error = NULL WHERE id = u.id;
      done := done + 1;
    EXCEPTION WHEN others THEN
      UPDATE cogo.project_updates
      SET status = 'failed', retries = retries + 1, last_error = SQLERRM,
          next_attempt_at = now() + make_interval(mins => power(2, least(u.retries, 10))::integer)
      WHERE id = u.id;
      failed := failed + 1;
    END;
  END LOOP;
  RETURN jsonb_build_object('applied', done, 'failed', failed);
END
$$;

GRANT EXECUTE ON FUNCTION cogo.record_project_update(uuid, text, text, jsonb, jsonb),
  cogo.apply_project_update(cogo.project_updates), cogo.project_updates_apply(integer) TO service_role;
