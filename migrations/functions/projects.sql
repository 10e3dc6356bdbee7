-- figma-compat's results for a project reach the application tables through
-- an outbox: the request writes cogo.project_updates in one statement, and a
-- projection (the cron, and right after the request) materialises the rows
-- into public.projects, public.pages and public.components, idempotently.
-- A failing row is retried after 2^retries minutes.
--
-- figma-compat projects have owners. The first caller to use a projectId
-- owns it (a user by their JWT sub, which row level security compares
-- owner_id with; a signed agent or a worker by its principal id); anyone
-- else gets 404 and writes nothing. The platform (p_owner NULL) may write
-- into any project; a project it creates first has no owner, and only the
-- platform writes into it.

-- Takes `p_project` for `p_owner`, creating it if nobody has: 404
-- project_not_found when someone else owns it. Two first users racing
-- cannot both win: the loser's INSERT waits for the winner's to commit,
-- does nothing, and the SELECT (a new snapshot) then sees the winner.
CREATE OR REPLACE FUNCTION cogo.project_claim(p_project uuid, p_owner text) RETURNS void
  LANGUAGE plpgsql AS $$
DECLARE
  current_owner text;
BEGIN
  IF p_owner IS NULL THEN
    RETURN;
  END IF;
  INSERT INTO public.projects (id, owner_id) VALUES (p_project, p_owner) ON CONFLICT (id) DO NOTHING;
  SELECT owner_id INTO current_owner FROM public.projects WHERE id = p_project;
  IF current_owner IS DISTINCT FROM p_owner THEN
    -- Not 403: whether someone else's project exists is not the caller's business.
    RAISE SQLSTATE 'PT404' USING MESSAGE = 'project_not_found', DETAIL = format('no project %s', p_project);
  END IF;
END
$$;

-- A conversion for a project: the claim, then the project and the page with
-- its rows, in one transaction, so a refused caller leaves no outbox row.
CREATE OR REPLACE FUNCTION cogo.record_project_update(
  p_project uuid, p_trace text, p_owner text, p_page jsonb, p_rows jsonb)
RETURNS jsonb
  LANGUAGE plpgsql AS $$
DECLARE
  ids jsonb;
BEGIN
  PERFORM cogo.project_claim(p_project, p_owner);
  WITH written AS (
    INSERT INTO cogo.project_updates (project_uuid, project_id, event_type, payload, trace_id, owner_id)
    VALUES (p_project, p_project::text, 'project.upsert', '{}'::jsonb, p_trace, p_owner),
           (p_project, p_project::text, 'page.upsert', jsonb_build_object('page', p_page, 'rows', p_rows), p_trace, p_owner)
    RETURNING id
  )
  SELECT jsonb_agg(id ORDER BY id) INTO ids FROM written;
  RETURN jsonb_build_object('ids', ids);
END
$$;

-- The projection never changes a project's owner, and refuses a row whose
-- writer does not own the project (possible only if the project was
-- deleted and claimed again between the write and the projection).
CREATE OR REPLACE FUNCTION cogo.apply_project_update(u cogo.project_updates) RETURNS void
  LANGUAGE plpgsql AS $$
DECLARE
  page_no integer;
  figma_page text := coalesce(nullif(u.payload #>> '{page,id}', ''), 'default');
  current_owner text;
BEGIN
  INSERT INTO public.projects AS p (id, owner_id, source)
  VALUES (u.project_uuid, u.owner_id, u.source)
  ON CONFLICT (id) DO UPDATE SET updated_at = now()
  RETURNING p.owner_id INTO current_owner;
  IF u.owner_id IS NOT NULL AND current_owner IS DISTINCT FROM u.owner_id THEN
    RAISE EXCEPTION 'project % is not owned by the writer of update %', u.project_uuid, u.id;
  END IF;
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
CREATE OR REPLACE FUNCTION cogo.project_updates_apply(p_limit integer DEFAULT 50) RETURNS jsonb
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

GRANT EXECUTE ON FUNCTION cogo.project_claim(uuid, text), cogo.record_project_update(uuid, text, text, jsonb, jsonb),
  cogo.apply_project_update(cogo.project_updates), cogo.project_updates_apply(integer)
  TO service_role;
