/**
 * The atlas section of the Clark et al. (2019) scans (`headlens scan --task special-tokens | attention-entropy
 * --report FILE.html`): their Figure 2 panels from the scan's tables and their Figure 6 embedding of the heads,
 * from the Jensen–Shannon distances between the heads on the scan's items.
 */
import type { HookedTransformer } from '../hooks/hooked_transformer.js';
import { readAttentionMaps } from '../interp/scores/attention_maps.js';
import { headDistances, headEmbedding, type HeadDistances, type HeadEmbedding } from '../interp/scores/head_distances.js';
import type { AtlasData } from '../viz/atlas.js';
import type { LayerAttentionSeries } from '../viz/layer_attention.js';

const CLASS_LABELS: Record<string, string> = { cls: '[CLS] / BOS', sep: '[SEP]', punct: '. or ,' };

/** The heads' mean Jensen–Shannon distances on the items and their classical-MDS embedding (`scan --distances`, and the atlas). */
export function distancesOnItems(model: HookedTransformer, items: number[][]): { distances: HeadDistances; embedding: HeadEmbedding } {
  // the items the scan dropped (longer than the context) are left out here too
  const distances = headDistances(items.filter((ids) => ids.length <= model.cfg.n_ctx).map((ids) => readAttentionMaps(model, ids)));
  return { distances, embedding: headEmbedding(distances) };
}

export function lookAtSection(model: HookedTransformer, task: string, scores: number[][], tables: Record<string, number[][]> | undefined, primary: string, items: number[][], computed?: ReturnType<typeof distancesOnItems>): NonNullable<AtlasData['lookAt']> {
  const all: Record<string, number[][]> = { ...(tables ?? {}), [primary]: scores };
  const series = (names: [string, string][]): LayerAttentionSeries[] => names.filter(([n]) => all[n]).map(([n, label]) => ({ label, scores: all[n] }));
  const panels: NonNullable<AtlasData['lookAt']>['panels'] = [];
  if (task === 'attention-entropy') {
    panels.push({ title: 'attention entropy', yLabel: 'avg. entropy (nats)', series: series([['entropy', 'all queries'], ['summary', readAttentionMaps(model, items[0]).causal ? 'from the last' : 'from [CLS]'], ['uniform', 'uniform, all queries']]) });
  } else {
    // their Figure 2's order (and so colours: [CLS] red, [SEP] blue, punctuation purple), other classes after
    const order = (n: string) => (n in CLASS_LABELS ? Object.keys(CLASS_LABELS).indexOf(n) : 99);
    const classes = Object.keys(all).filter((n) => !['self', 'prev', 'next'].includes(n) && !n.includes('->')).sort((a, b) => order(a) - order(b));
    panels.push({ title: 'attention to special tokens', series: series(classes.map((c) => [c, CLASS_LABELS[c] ?? c])) });
    const split = Object.keys(all).find((n) => n.startsWith('rest->'))?.slice('rest->'.length);
    if (split) panels.push({ title: `attention to ${CLASS_LABELS[split] ?? split} by query`, series: series([[`rest->${split}`, `other → ${CLASS_LABELS[split] ?? split}`], [`${split}->${split}`, `${CLASS_LABELS[split] ?? split} → itself`]]) });
    panels.push({ title: 'attention to relative positions', series: series([['prev', 'previous token'], ['self', 'current token'], ['next', 'next token']]), means: false });
  }
  const { distances: d, embedding: e } = computed ?? distancesOnItems(model, items);
  return {
    note: `Clark et al. (2019), "What Does BERT Look At?": ${task === 'attention-entropy' ? 'attention entropy' : 'average attention'} per head (dots) and per layer (lines) on the scan's ${items.length} items, as their ${task === 'attention-entropy' ? 'Figure 4' : 'Figure 2'}; the heads placed by classical MDS of the mean Jensen–Shannon divergence between their attention distributions, as their Figure 6 (they used scikit-learn's SMACOF MDS).`,
    panels,
    embedding: { title: 'heads embedded by Jensen–Shannon distance, coloured by layer', points: e.points, note: `Classical MDS; the two dimensions hold ${(100 * e.explained).toFixed(0)} % of the positive eigenvalue mass (${d.queries} query tokens).` },
  };
}
