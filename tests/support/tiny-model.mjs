// A tiny Llama-shaped model with random weights and a byte-level tokenizer, written as a Hugging
// Face folder (config.json, model.safetensors, tokenizer.json, tokenizer_config.json): the shape of
// whetstone_api::testing::write_tiny_model, so the browser tests can import and train a real model
// in seconds without a download or a build feature.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const CONFIG = {
  vocab: 320, // 256 bytes, 3 chat markers, padded
  hidden: 64,
  intermediate: 128,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  headDim: 16,
  eos: 258,
};

/** Deterministic normal samples (xorshift + Box-Muller): the same folder on every run. */
function normals(seed) {
  let s = BigInt(seed) || 1n;
  const mask = (1n << 64n) - 1n;
  const uniform = () => {
    s ^= (s << 13n) & mask;
    s ^= s >> 7n;
    s ^= (s << 17n) & mask;
    return Number(s >> 11n) / 2 ** 53;
  };
  return () => {
    const u1 = Math.max(uniform(), 1e-12);
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * uniform());
  };
}

function tensors() {
  const c = CONFIG;
  const q = c.heads * c.headDim;
  const kv = c.kvHeads * c.headDim;
  const next = normals(3);
  const out = [];
  const add = (name, shape, std, mean = 0) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = mean + std * next();
    out.push({ name, shape, data });
  };
  add('model.embed_tokens.weight', [c.vocab, c.hidden], 0.02);
  for (let l = 0; l < c.layers; l++) {
    const p = `model.layers.${l}`;
    add(`${p}.input_layernorm.weight`, [c.hidden], 0.1, 1);
    add(`${p}.post_attention_layernorm.weight`, [c.hidden], 0.1, 1);
    for (const [n, o, i] of [
      ['self_attn.q_proj', q, c.hidden],
      ['self_attn.k_proj', kv, c.hidden],
      ['self_attn.v_proj', kv, c.hidden],
      ['self_attn.o_proj', c.hidden, q],
      ['mlp.gate_proj', c.intermediate, c.hidden],
      ['mlp.up_proj', c.intermediate, c.hidden],
      ['mlp.down_proj', c.hidden, c.intermediate],
    ]) {
      add(`${p}.${n}.weight`, [o, i], 0.02);
    }
  }
  add('model.norm.weight', [c.hidden], 0.1, 1);
  add('lm_head.weight', [c.vocab, c.hidden], 0.02);
  // The special tokens' rows are zero, so their logit is always 0 while the best of the ~300 random
  // others is above it: a greedy answer never ends early and always runs to the length asked for,
  // whatever a short training run did to the layers below. The tests that stop an answer or wait
  // for its last token rely on that.
  const head = out[out.length - 1].data;
  for (let id = 256; id <= c.eos; id++) head.fill(0, id * c.hidden, (id + 1) * c.hidden);
  return out;
}

/** The safetensors layout: an 8-byte header length, a JSON header, then the raw little-endian data. */
function safetensors(list) {
  const header = {};
  let offset = 0;
  for (const t of list) {
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + json.length) % 8)) % 8);
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([head, Buffer.from(json, 'utf8'), ...list.map((t) => Buffer.from(t.data.buffer))]);
}

/** GPT-2's byte-level BPE with no merges: every byte is a token, plus three special tokens. */
function tokenizer() {
  const bs = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n++;
    }
  }
  const vocab = Object.fromEntries(bs.map((b, i) => [String.fromCodePoint(cs[i]), b]));
  const special = (id, content) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(256, '<|endoftext|>'), special(257, '<|im_start|>'), special(258, '<|im_end|>')],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: null,
    decoder: { ...byteLevel, add_prefix_space: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
}

/** Writes the model folder at `dir` and returns its path. */
export function writeTinyModel(dir) {
  const c = CONFIG;
  mkdirSync(dir, { recursive: true });
  const config = {
    model_type: 'llama',
    architectures: ['LlamaForCausalLM'],
    vocab_size: c.vocab,
    hidden_size: c.hidden,
    intermediate_size: c.intermediate,
    num_hidden_layers: c.layers,
    num_attention_heads: c.heads,
    num_key_value_heads: c.kvHeads,
    head_dim: c.headDim,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    max_position_embeddings: 1024,
    tie_word_embeddings: false,
    attention_bias: false,
    bos_token_id: null,
    eos_token_id: c.eos,
    hidden_act: 'silu',
    torch_dtype: 'float32',
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  writeFileSync(join(dir, 'model.safetensors'), safetensors(tensors()));
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizer()));
  writeFileSync(
    join(dir, 'tokenizer_config.json'),
    JSON.stringify({ eos_token: '<|im_end|>', pad_token: '<|endoftext|>', bos_token: null }),
  );
  return dir;
}
