// Drives the gateway with the real @supabase/supabase-js, as the IDE and
// the runtime call a Supabase project: an embedded read of a project, a
// bulk upsert of components, an RPC with an array argument, each as Alice
// (the owner) and as Bob (who owns nothing of Alice's). Prints every
// answer as one JSON object; supabase_js.rs asserts on it.
import { createClient } from '@supabase/supabase-js';

const { SUPABASE_URL, ANON_KEY, ALICE_TOKEN, BOB_TOKEN } = process.env;
const ALICE_PROJECT = '11111111-1111-4111-8111-111111111111';

const as = (token) =>
  createClient(SUPABASE_URL, ANON_KEY, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    global: { headers: { Authorization: `Bearer ${token}` } },
  });
const alice = as(ALICE_TOKEN);
const bob = as(BOB_TOKEN);

// What a caller sees of an answer.
const seen = ({ data, error, count, status }) => ({ data, error, count, status });

const tree = 'id, name, pages(page_id, name, components(id, name, type, index_in_page))';
const projectTree = (client) =>
  client
    .from('projects')
    .select(tree)
    .eq('id', ALICE_PROJECT)
    .order('page_id', { referencedTable: 'pages' })
    .order('id', { referencedTable: 'pages.components' });

const component = (page, id, name, extra = {}) => ({
  project_id: ALICE_PROJECT,
  page_id: page,
  id,
  name,
  type: 'text',
  index_in_page: 0,
  ...extra,
});
const onConflict = 'project_id,page_id,id';

const results = {};
results.aliceTree = seen(await projectTree(alice).single());
results.bobTree = seen(await projectTree(bob).maybeSingle());
results.bobProjects = seen(await bob.from('projects').select('name, pages(name, components(id))'));

// A bulk upsert: one row updated, one inserted (postgrest-js sends
// ?columns="..." with every key, quoted).
results.aliceUpsert = seen(
  await alice
    .from('components')
    .upsert([component(1, 'c1', 'Heading', { dx: 12 }), component(2, 'c4', 'Footer', { dx: 0 })], {
      onConflict,
      count: 'exact',
    })
    .select('id, name, dx')
    .order('id'),
);
// Keys that differ between rows: a missing key is NULL (dx is NOT NULL)...
results.aliceUpsertNulls = seen(
  await alice.from('components').upsert([component(2, 'c5', 'Badge', { dx: 3 }), component(2, 'c6', 'Icon')], { onConflict }),
);
// ... unless defaultToNull: false asks for the column defaults.
results.aliceUpsertDefaults = seen(
  await alice
    .from('components')
    .upsert([component(2, 'c5', 'Badge', { dx: 3 }), component(2, 'c6', 'Icon')], { onConflict, defaultToNull: false })
    .select('id, dx, version')
    .order('id'),
);
results.bobUpsert = seen(
  await bob.from('components').upsert([component(1, 'c1', 'Taken over')], { onConflict }).select('id'),
);

results.aliceRpc = seen(await alice.rpc('components_by_ids', { ids: ['c1', 'c2', 'c4', 'c9'] }).select('id, name, page_id'));
results.bobRpc = seen(await bob.rpc('components_by_ids', { ids: ['c1', 'c2', 'c3'] }).select('id, name, page_id'));
results.aliceCount = seen(await alice.from('components').select('*', { count: 'exact', head: true }));
results.aliceRpcCount = seen(await alice.rpc('components_by_ids', { ids: ['c1', 'c2'] }, { count: 'exact' }).select('id'));

// The rest of the query builder the IDE may use, each on the wire as
// postgrest-js writes it.
const comps = (client) => client.from('components').select('id').eq('project_id', ALICE_PROJECT).order('id');
results.likeAnyOf = seen(await comps(alice).likeAnyOf('name', ['Head%', 'Go']));
results.ilikeAllOf = seen(await comps(alice).ilikeAllOf('name', ['%O%', '%G%']));
results.textSearch = seen(await comps(alice).textSearch('name', 'heading', { type: 'plain', config: 'english' }));
results.websearch = seen(await comps(alice).textSearch('name', 'logo or footer', { type: 'websearch', config: 'english' }));
results.stripNulls = seen(
  await alice.from('components').select('id, nothing:options->missing').eq('id', 'c2').stripNulls(),
);
results.csv = seen(await alice.from('pages').select('page_id, name').eq('project_id', ALICE_PROJECT).order('page_id').csv());
results.maxAffected = seen(
  await alice.from('components').update({ name: 'Renamed' }).eq('page_id', 2).eq('project_id', ALICE_PROJECT).maxAffected(1),
);
results.insertCount = seen(
  await alice.from('pages').insert([{ project_id: ALICE_PROJECT, page_id: 3, figma_id: '0:3', name: 'Contact' }], {
    count: 'exact',
  }),
);
results.aliceAfter = seen(await projectTree(alice).single());

console.log(JSON.stringify(results));
