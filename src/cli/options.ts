/**
 * Each `headlens` command declares its options once, as zod schemas with a line of help each; from that one
 * declaration come the argument parser's table (node:util parseArgs), the checks and typed values (zod),
 * and the usage text (`headlens help`, `headlens CMD --help`). A bad value is a HeadlensError naming the
 * flag and the fix, which the CLI prints on one line and exits with 2.
 *
 * Why not commander or yargs: parseArgs already splits the argv with the error messages the tests pin,
 * zod already validates and types values everywhere else in headlens, and what is left to write here —
 * reading a schema's kind, default and enum values for the usage text — is small.
 */
import type { ParseArgsConfig } from 'node:util';
import { z } from 'zod';
import { HeadlensError } from '../errors.js';

/** What an option tells the usage text and the fix of an error. */
export interface OptionMeta {
  /** One line of help. */
  description: string;
  /** The value's name in the synopsis (M, N, FILE); a boolean flag has none. Default: the enum values, else VALUE. */
  value?: string;
  /** A value that works, shown as the fix when the option is missing or malformed (`e.g. --k 3`). */
  example?: string;
  /** The fix shown when the value is missing or bad, where `e.g. --flag EXAMPLE` would not say enough. */
  fix?: string;
  /** The default as the usage text shows it, when it is decided at run time rather than by the schema. */
  default?: string;
  /** A one-letter alias (`-h`). */
  short?: string;
}

const OPTION_META = z.registry<OptionMeta, z.ZodType>();

/** An option: its schema (what values it takes, its default) and its help. */
export function option<S extends z.ZodType>(schema: S, meta: OptionMeta): S {
  OPTION_META.add(schema, meta);
  return schema;
}

export type OptionShape = Record<string, z.ZodType>;
export type OptionValues<S extends OptionShape> = z.output<z.ZodObject<S>> & CommonValues;

/** A `headlens` command: what it does, its options, and what it runs with their checked values. */
export interface Command<S extends OptionShape = OptionShape> {
  summary: string;
  options: S;
  /**
   * Values for options not given on the command line, read from elsewhere before the checks
   * (`train --resume DIR` takes them from the run it continues).
   */
  preset?(given: Record<string, unknown>): Record<string, unknown>;
  run(values: OptionValues<S>): Promise<void>;
}

/** Declares a command; the values `run` gets are typed by its options. */
export function defineCommand<S extends OptionShape>(c: Command<S>): Command<S> {
  return c;
}

/** The options every command takes. */
export const COMMON = {
  backend: option(z.string().optional(), {
    description: 'the tfjs backend: webgpu, tensorflow, wasm or cpu',
    value: 'B',
    default: 'the best available; env HEADLENS_BACKEND',
  }),
  help: option(z.boolean().optional(), { description: 'print this help', short: 'h' }),
};
type CommonValues = z.output<z.ZodObject<typeof COMMON>>;

// ---- option kinds the commands share --------------------------------------------------------------

/** `--model M`: a model folder, a shipped model's name, or a hub id. */
export const modelOption = (example = 'datasets/zoo/tiny-gpt2-random') =>
  option(z.string(), {
    description: "a model folder (config.json + model.safetensors), a shipped model's name, or a hub id when online",
    value: 'M',
    example,
  });

/**
 * `--prepend-bos` / `--no-prepend-bos`: whether text is encoded with the model's BOS first. Neither: the
 * library's default, BOS first where the config's bos_token_id is inside the vocabulary (model.toTokens).
 * Two flags because node:util parseArgs (Node 20) has no negated booleans; token ids are never changed.
 */
export const bosOptions = () => ({
  'prepend-bos': option(z.boolean().optional(), { description: "encode text with the model's BOS token first", default: 'yes where the vocabulary has the BOS' }),
  'no-prepend-bos': option(z.boolean().optional(), { description: 'encode text without a BOS token first' }),
});

const flagOf = (iss: { path?: PropertyKey[] }) => `--${String(iss.path?.[0] ?? 'option')}`;

/** A non-negative integer given as digits ("0", "12"). */
export const nonNegativeInt = () =>
  z
    .string()
    .regex(/^\d+$/, { error: (iss) => `${flagOf(iss)} '${String(iss.input)}' is not a non-negative integer` })
    .transform(Number);

/**
 * A positive integer ("8"). `cap`: the most the flag takes, said in the error with why (a documented cap on a
 * flag that sizes a loop or a list; see size_bounds.ts).
 */
export const positiveInt = (cap?: { max: number; why: string }) =>
  z
    .string()
    .refine((s) => Number.isInteger(Number(s)) && Number(s) >= 1, { error: (iss) => `${flagOf(iss)} ${String(iss.input)} is not a positive integer` })
    .transform(Number)
    .refine((n) => cap === undefined || n <= cap.max, { error: (iss) => `${flagOf(iss)} ${String(iss.input)} is more than ${cap!.max}, ${cap!.why}` });

/** Any integer ("-3", "0", "42"). */
export const integer = () =>
  z
    .string()
    .refine((s) => Number.isInteger(Number(s)), { error: (iss) => `${flagOf(iss)} ${String(iss.input)} is not an integer` })
    .transform(Number);

/** A finite number above 0 ("1e-3"). */
export const positiveNumber = () =>
  z
    .string()
    .refine((s) => Number.isFinite(Number(s)) && Number(s) > 0, { error: (iss) => `${flagOf(iss)} ${String(iss.input)} is not a positive number` })
    .transform(Number);

/** A comma-separated list ("a, b,c" → ['a', 'b', 'c']). */
export const commaList = () => z.string().transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean));

// ---- parsing ---------------------------------------------------------------------------------------

interface Kind {
  type: 'string' | 'boolean';
  multiple?: boolean;
  enumValues?: string[];
}

/** What parseArgs should read for a schema: a boolean flag, a string, or a string given several times. */
function kindOf(schema: z.core.$ZodType): Kind {
  const def = schema._zod.def as z.core.$ZodTypeDef & { innerType?: z.core.$ZodType; in?: z.core.$ZodType; entries?: Record<string, string> };
  switch (def.type) {
    case 'optional':
    case 'default':
    case 'prefault':
    case 'nullable':
    case 'readonly':
      return kindOf(def.innerType!);
    case 'pipe':
      return kindOf(def.in!);
    case 'boolean':
      return { type: 'boolean' };
    case 'array':
      return { type: 'string', multiple: true };
    case 'enum':
      return { type: 'string', enumValues: Object.values(def.entries!) };
    default:
      return { type: 'string' };
  }
}

/** Whether the option may be left out (optional, or with a default). */
function isOptional(schema: z.core.$ZodType): boolean {
  return schema._zod.optin !== undefined;
}

/** The schema's own default, when it has one. */
function defaultOf(schema: z.core.$ZodType): unknown {
  const def = schema._zod.def as z.core.$ZodTypeDef & { defaultValue?: unknown };
  return def.type === 'default' ? def.defaultValue : undefined;
}

const metaOf = (schema: z.ZodType): OptionMeta => OPTION_META.get(schema) ?? { description: '' };

/** "a", "a or b", "a, b or c". */
function orList(xs: string[]): string {
  return xs.length < 2 ? xs.join('') : `${xs.slice(0, -1).join(', ')} or ${xs.at(-1)}`;
}

/** parseArgs' table for a command's options (with the common ones). */
export function parseArgsOptions(options: OptionShape): NonNullable<ParseArgsConfig['options']> {
  const out: NonNullable<ParseArgsConfig['options']> = {};
  for (const [name, schema] of Object.entries({ ...COMMON, ...options })) {
    const { type, multiple } = kindOf(schema);
    const short = metaOf(schema).short;
    out[name] = { type, ...(multiple ? { multiple } : {}), ...(short ? { short } : {}) };
  }
  return out;
}

/**
 * Checks the raw values parseArgs read against a command's options and returns them typed, defaults filled
 * in; the first bad one is a HeadlensError with the flag, the problem and the fix.
 */
export function checkOptions<S extends OptionShape>(command: string, options: S, raw: Record<string, unknown>): OptionValues<S> {
  const shape = { ...COMMON, ...options };
  // an empty string is no value: `--model ""` is as missing as no --model
  const given = Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== ''));
  const r = z.object(shape).safeParse(given, {
    // messages for the checks every option has; an option kind's own messages (above) take precedence
    error: (iss) => {
      const flag = flagOf(iss);
      if (iss.input === undefined) return `${flag} is required`;
      if (iss.code === 'invalid_value') return `${flag} '${String(iss.input)}' is not ${orList(iss.values.map(String))}`;
      return `${flag} ${String(iss.input)} is not valid (${iss.code})`;
    },
  });
  if (r.success) return r.data as OptionValues<S>;
  const issue = r.error.issues[0];
  const name = String(issue.path[0]);
  throw new HeadlensError(issue.message, fixFor(command, name, shape[name]));
}

function fixFor(command: string, name: string, schema: z.ZodType | undefined): string {
  if (!schema) return `see headlens ${command} --help`;
  const meta = metaOf(schema);
  if (meta.fix) return meta.fix;
  const { enumValues } = kindOf(schema);
  if (enumValues) return enumValues.length <= 3 ? `use ${orList(enumValues.map((v) => `--${name} ${v}`))}` : `use one of ${enumValues.join(', ')}`;
  return meta.example ? `e.g. --${name} ${meta.example}` : `see headlens ${command} --help`;
}

// ---- usage text ------------------------------------------------------------------------------------

/** The value's name: the declared one, else the enum values (`qk|ov`), else VALUE; `short` names a long enum by its flag. */
function valueName(schema: z.ZodType, flag: string, short = false): string {
  const meta = metaOf(schema);
  const values = kindOf(schema).enumValues?.join('|');
  if (meta.value) return meta.value;
  if (values) return short && values.length > 24 ? flag.toUpperCase() : values;
  return 'VALUE';
}

/** One synopsis line: `headlens svd --model M --layer L … [--k N] [--json] [--backend B]`. */
export function synopsis(name: string, options: OptionShape): string {
  const parts = Object.entries({ ...options, backend: COMMON.backend }).map(([flag, schema]) => {
    const kind = kindOf(schema);
    const text = kind.type === 'boolean' ? `--${flag}` : `--${flag} ${valueName(schema, flag)}${kind.multiple ? ' …' : ''}`;
    return isOptional(schema) ? `[${text}]` : text;
  });
  return `headlens ${name} ${parts.join(' ')}`;
}

/** `headlens CMD --help`: the synopsis, what the command does, and one line per option with its default. */
export function commandHelp(name: string, c: Command): string {
  const rows = Object.entries({ ...c.options, ...COMMON }).map(([flag, schema]) => {
    const kind = kindOf(schema);
    const meta = metaOf(schema);
    const value = kind.type === 'boolean' ? '' : valueName(schema, flag, true);
    const left = `${meta.short ? `-${meta.short}, ` : ''}--${flag}${value ? ` ${value}` : ''}`;
    const dflt = meta.default ?? (defaultOf(schema) !== undefined ? String(defaultOf(schema)) : undefined);
    const values = kind.enumValues && value === flag.toUpperCase() ? `one of ${kind.enumValues.join(', ')}` : undefined;
    const notes = [values, !isOptional(schema) ? 'required' : undefined, dflt !== undefined ? `default: ${dflt}` : undefined].filter(Boolean);
    return [left, `${meta.description}${notes.length ? ` (${notes.join('; ')})` : ''}`];
  });
  const width = Math.max(...rows.map(([l]) => l.length)) + 2;
  return [`usage: ${synopsis(name, c.options)}`, '', c.summary, '', 'options:', ...rows.map(([l, r]) => `  ${l.padEnd(width)}${r}`)].join('\n');
}

/** `headlens help`: every command's synopsis and summary. */
export function usage(commands: Record<string, Command>): string {
  const lines = ['headlens — attention heads, opened up', '', 'usage:'];
  for (const [name, c] of Object.entries(commands)) lines.push(`  ${synopsis(name, c.options)}`, `      ${c.summary}`);
  lines.push(
    '',
    "M is a model folder (config.json + model.safetensors), a shipped model's name, or a hub id (online only).",
    'B is webgpu, tensorflow, wasm or cpu (default: the best available; env HEADLENS_BACKEND).',
    'headlens CMD --help lists the options of one command with their defaults.',
  );
  return lines.join('\n');
}
