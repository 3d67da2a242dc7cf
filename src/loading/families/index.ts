import { HeadlensError } from '../../errors.js';
import type { Family } from './family.js';
import { gpt2 } from './gpt2.js';
import { gptNeox } from './gpt_neox.js';
import { llama } from './llama.js';
import { native } from './native.js';
import { bert } from './bert.js';
import { roberta } from './roberta.js';

export const FAMILIES: Family[] = [gpt2, gptNeox, llama, bert, roberta, native];

export function supportedModelTypes(): string[] {
  return FAMILIES.flatMap((f) => f.modelTypes);
}

export function familyFor(modelType: unknown, source: string): Family {
  const f = FAMILIES.find((fam) => fam.modelTypes.includes(modelType as string));
  if (!f) {
    throw new HeadlensError(
      `${source}: model_type ${JSON.stringify(modelType)} is not supported`,
      `supported model types: ${supportedModelTypes().join(', ')}`,
    );
  }
  return f;
}

/** The family that writes a model of this architecture. */
export function familyForArchitecture(arch: string): Family {
  if (arch === 'GPT2LMHeadModel') return gpt2;
  if (arch === 'GPTNeoXForCausalLM') return gptNeox;
  if (['LlamaForCausalLM', 'MistralForCausalLM', 'Qwen2ForCausalLM'].includes(arch)) return llama;
  if (arch === 'BertForMaskedLM') return bert;
  if (arch === 'RobertaForMaskedLM') return roberta;
  return native;
}
