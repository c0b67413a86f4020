// The figures an evaluation reports, each with one plain sentence of what it measures, its scale and
// which way is better, so a reader who has never met ROUGE can still read the table.

import type { Side, SideMetrics, TextMetrics } from '../../clients/evaluation';

export interface MetricDoc {
  key: string;
  label: string;
  explain: string;
  /** Lower is better (perplexity); higher for every other figure. */
  lowerIsBetter: boolean;
  value: (m: SideMetrics) => number | null;
  format: (v: number) => string;
}

const share = (v: number): string => v.toFixed(3);
const hundred = (v: number): string => v.toFixed(1);
const text = (pick: (t: TextMetrics) => number) => (m: SideMetrics): number | null => (m.text === null ? null : pick(m.text));

export const METRICS: MetricDoc[] = [
  {
    key: 'perplexity',
    label: 'Perplexity',
    explain: 'How surprised the model is by the reference answers, word piece by word piece. Lower is better; 1 would be no surprise at all.',
    lowerIsBetter: true,
    value: (m) => m.perplexity,
    format: (v) => v.toFixed(2),
  },
  {
    key: 'rouge1',
    label: 'ROUGE-1',
    explain: 'Share of single words that the answer and the reference have in common (0 to 1).',
    lowerIsBetter: false,
    value: text((t) => t.rouge1),
    format: share,
  },
  {
    key: 'rouge2',
    label: 'ROUGE-2',
    explain: 'The same for pairs of neighbouring words, so word order starts to count (0 to 1).',
    lowerIsBetter: false,
    value: text((t) => t.rouge2),
    format: share,
  },
  {
    key: 'rouge_l',
    label: 'ROUGE-L',
    explain: 'The longest run of words that appear in the same order in the answer and the reference (0 to 1).',
    lowerIsBetter: false,
    value: text((t) => t.rouge_l),
    format: share,
  },
  {
    key: 'rouge_lsum',
    label: 'ROUGE-Lsum',
    explain: 'ROUGE-L taken sentence by sentence, which suits answers of several sentences (0 to 1).',
    lowerIsBetter: false,
    value: text((t) => t.rouge_lsum),
    format: share,
  },
  {
    key: 'bleu',
    label: 'BLEU',
    explain: 'How many short word sequences of the answers match the references, with a penalty for answers that are too short (0 to 100).',
    lowerIsBetter: false,
    value: text((t) => t.bleu),
    format: hundred,
  },
  {
    key: 'chrf',
    label: 'chrF',
    explain: 'Overlap of letters and short letter sequences, which forgives different word endings (0 to 100).',
    lowerIsBetter: false,
    value: text((t) => t.chrf),
    format: hundred,
  },
  {
    key: 'meteor',
    label: 'METEOR',
    explain: 'Words matched with the reference, also through shared stems and synonyms, with a penalty for a scrambled order (0 to 1).',
    lowerIsBetter: false,
    value: text((t) => t.meteor),
    format: share,
  },
  {
    key: 'f1',
    label: 'F1 (words)',
    explain: 'Balance of how many of the answer’s words are in the reference and how many of the reference’s words are in the answer (0 to 1).',
    lowerIsBetter: false,
    value: text((t) => t.f1),
    format: share,
  },
  {
    key: 'exact_match',
    label: 'Exact match',
    explain: 'Share of answers that are the reference word for word, ignoring case, punctuation and articles (0 to 1).',
    lowerIsBetter: false,
    value: text((t) => t.exact_match),
    format: share,
  },
];

/** A side's name in words; `compareRun` names the other run when there is one. */
export function sideName(side: Side, compareRun: number | null): string {
  if (side === 'base') return 'Base model';
  if (side === 'tuned') return 'Tuned';
  return compareRun === null ? 'Other run' : `Run #${compareRun}`;
}

/** The index of the best value among `values` (null where a side has none); -1 when there is no single best. */
export function bestOf(values: (number | null)[], lowerIsBetter: boolean): number {
  let best = -1;
  let tie = false;
  values.forEach((v, i) => {
    if (v === null || !Number.isFinite(v)) return;
    if (best < 0) {
      best = i;
      return;
    }
    const b = values[best] as number;
    if (v === b) tie = true;
    else if (lowerIsBetter ? v < b : v > b) {
      best = i;
      tie = false;
    }
  });
  return tie ? -1 : best;
}
