#!/usr/bin/env python3
"""Random-prompt fixtures for the tokenizer kinds, from independent references (a development check, not a ctest).

clip: a Python reimplementation of transformers' slow CLIPTokenizer without ftfy (BasicTokenizer clean-up with
unicodedata, str.lower, the regex module's IGNORECASE pattern, byte-level BPE), needs `regex`.
t5: sentencepiece itself (Debian's python3-sentencepiece 0.1.97, the version the reference fixtures name; run it
with /usr/bin/python3), without added tokens in the prompts.

    python3 tests/text/make_random_tokenizer_fixtures.py clip OUT/text2image SEED
    /usr/bin/python3 tests/text/make_random_tokenizer_fixtures.py t5 OUT/text2image SEED
    REPA_TOKENIZERS_DIR=tests/fixtures/tokenizers build/tests/repa_conformance OUT/text2image

Each run writes 4000-5000 prompts of random code points (all planes, combining marks, controls, CJK, emoji, Greek
capitals, ligatures, full-width forms) mixed with words; clip writes one fixture per pad token.
"""
import json
import random
import struct
import sys
import unicodedata
from pathlib import Path

TOKENIZERS = Path(__file__).resolve().parent.parent / "fixtures" / "tokenizers"

POOLS = [range(0x20, 0x7F), range(0xA0, 0x250), range(0x300, 0x370), range(0x370, 0x400), range(0x400, 0x530),
         range(0x1E00, 0x1F00), range(0x2000, 0x2070), range(0x2100, 0x2460), range(0x2460, 0x2500),
         range(0x3000, 0x3100), range(0x4E00, 0x4E80), range(0xAC00, 0xAC80), range(0x1100, 0x1200),
         range(0xFB00, 0xFB50), range(0xFF00, 0xFFF0), range(0x1F300, 0x1F700), range(0x0, 0x20), range(0x600, 0x700),
         range(0x900, 0x980), range(0x10400, 0x10450), range(0x1D400, 0x1D500), range(0xE000, 0xE010),
         range(0x2C00, 0x2D00), range(0, 0x30000), range(0, 0x30000), range(0x1F000, 0x1FB00), range(0xE0000, 0xE0080)]


def random_prompts(count, words, separators):
    prompts = []
    while len(prompts) < count:
        parts = []
        for _ in range(random.randint(0, 12)):
            if random.random() < 0.4:
                parts.append(random.choice(words))
            else:
                pool = random.choice(POOLS)
                codes = (random.choice(pool) for _ in range(random.randint(1, 6)))
                parts.append("".join(chr(c) for c in codes if not 0xD800 <= c <= 0xDFFF))
            parts.append(random.choice(separators))
        prompts.append("".join(parts))
    return prompts


def write_fixture(path, kind, config, prompts, all_ids, length, pad_id):
    tensors = {f"out.ids.{i}": ids for i, ids in enumerate(all_ids)}
    rows, masks = [], []
    for ids in all_ids:
        kept = ids[: length - 1] + [ids[-1]] if len(ids) > length else ids
        rows += kept + [pad_id] * (length - len(kept))
        masks += [1] * len(kept) + [0] * (length - len(kept))
    tensors["out.input_ids"], tensors["out.attention_mask"] = rows, masks
    shapes = {k: [len(v)] for k, v in tensors.items()}
    shapes["out.input_ids"] = shapes["out.attention_mask"] = [len(prompts), length]
    header = {"__metadata__": {"kind": kind, "config": json.dumps(config), "prompts": json.dumps(prompts),
                               "count": str(len(prompts)), "atol": "0", "rtol": "0"}}
    data, offset = b"", 0
    for name, values in tensors.items():
        raw = struct.pack(f"<{len(values)}q", *values)
        header[name] = {"dtype": "I64", "shape": shapes[name], "data_offsets": [offset, offset + len(raw)]}
        data += raw
        offset += len(raw)
    head = json.dumps(header).encode()
    head += b" " * ((8 - len(head) % 8) % 8)
    Path(path).write_bytes(struct.pack("<Q", len(head)) + head + data)


def clip_main(out_dir, seed):
    import regex  # noqa: F401  (used by the reference below)

    root = str(TOKENIZERS / 'clip') + '/'
    encoder = json.load(open(root + 'vocab.json', encoding='utf-8'))
    merges = open(root + 'merges.txt', encoding='utf-8').read().strip().split('\n')[1:49152 - 256 - 2 + 1]
    ranks = {tuple(m.split()): i for i, m in enumerate(merges)}
    def bytes_to_unicode():
        bs = list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1)) + list(range(ord('®'), ord('ÿ') + 1))
        cs = bs[:]; n = 0
        for b in range(256):
            if b not in bs: bs.append(b); cs.append(256 + n); n += 1
        return dict(zip(bs, map(chr, cs)))
    be = bytes_to_unicode()
    pat = regex.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""", regex.IGNORECASE)
    def is_cjk(cp):
        return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
                or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)
    def basic(text):
        out = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or (ch not in '\t\n\r' and unicodedata.category(ch).startswith('C')): continue
            out.append(' ' if (ch in ' \t\n\r' or unicodedata.category(ch) == 'Zs') else ch)
        text = ''.join(out)
        text = ''.join(' ' + c + ' ' if is_cjk(ord(c)) else c for c in text)
        text = unicodedata.normalize('NFC', text)
        words = [w.lower() for w in text.strip().split()]
        return ' '.join(' '.join(words).strip().split())
    cache = {'<|startoftext|>': '<|startoftext|>', '<|endoftext|>': '<|endoftext|>'}
    def bpe(token):
        if token in cache: return cache[token]
        word = tuple(token[:-1]) + (token[-1] + '</w>',)
        while len(word) > 1:
            pairs = set(zip(word, word[1:]))
            best = min(pairs, key=lambda p: ranks.get(p, float('inf')))
            if best not in ranks: break
            first, second = best; new = []; i = 0
            while i < len(word):
                try: j = word.index(first, i)
                except ValueError: new.extend(word[i:]); break
                new.extend(word[i:j]); i = j
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second: new.append(first + second); i += 2
                else: new.append(word[i]); i += 1
            word = tuple(new)
        return ' '.join(word)
    def tokenize_chunk(text):
        text = basic(text).lower()
        out = []
        for t in regex.findall(pat, text):
            t = ''.join(be[b] for b in t.encode('utf-8'))
            out.extend(bpe(t).split(' '))
        return out
    def split_special(text, specials):
        out = []; i = 0; start = 0
        while i < len(text):
            m = max((s for s in specials if text.startswith(s, i)), key=len, default=None)
            if m is None: i += 1; continue
            if i > start: out.append(text[start:i])
            out.append(m); i += len(m); start = i
        if start < len(text): out.append(text[start:])
        return out
    def encode(text, pad):
        specials = ['<|startoftext|>', '<|endoftext|>'] + ([pad] if pad not in ('<|endoftext|>',) else [])
        ids = [49406]
        for chunk in split_special(text, specials):
            if chunk in specials: ids.append(encoder[chunk])
            else: ids.extend(encoder.get(t, 49407) for t in tokenize_chunk(chunk))
        return ids + [49407]

    random.seed(seed)
    words = ["a", "the", "photo", "don't", "it's", "WE'LL", "ΟΔΥΣΣΕΥΣ", "İstanbul", "straße", "ﬁne", "<|endoftext|>", "!",
             "<|startoftext|>", "e\u0301", "Å", "\u212b", "'S", "'ſ", "ǅ", "ß", "ΣΑΣ", "σς", "\u0345"]
    prompts = random_prompts(4000, words, [" ", "", "  ", "\t", "\u3000", "\n"])
    for pad, name in [("<|endoftext|>", "eospad"), ("!", "bangpad")]:
        pad_id = encoder[pad]
        config = {"bos_token": "<|startoftext|>", "bos_token_id": 49406, "eos_token": "<|endoftext|>",
                  "eos_token_id": 49407, "max_length": 77, "merges_file": "clip/merges.txt", "pad_token": pad,
                  "pad_token_id": pad_id, "vocab_file": "clip/vocab.json"}
        write_fixture(Path(out_dir) / f"clip_tokenize_random_{name}_{seed}.safetensors", "clip_tokenize", config,
                      prompts, [encode(p, pad) for p in prompts], 77, pad_id)


def t5_main(out_dir, seed):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor()
    sp.Load(str(TOKENIZERS / "t5" / "spiece.model"))
    random.seed(seed)
    words = ["a", "the", "photo", "don't", "Straße", "ﬁne", "½", "café", "e\u0301", "   ", "\t", "\n", "\u00a0", "\u3000",
             "ＡＢＣ", "\u2034"]
    prompts = [p for p in random_prompts(5000, words, [" ", "", "  ", "\t"])
               if not any(s in p for s in ("</s>", "<pad>", "<unk>", "<extra_id"))]
    all_ids = [[sp.piece_to_id(p) for p in sp.encode(s, out_type=str)] + [1] for s in prompts]
    config = {"eos_token_id": 1, "extra_ids": 100, "max_length": 64, "pad_token_id": 0, "spiece_file": "t5/spiece.model",
              "unk_token_id": 2, "vocab_size_with_extra_ids": 32100}
    write_fixture(Path(out_dir) / f"t5_tokenize_random_{seed}.safetensors", "t5_tokenize", config, prompts, all_ids, 64, 0)


if __name__ == "__main__":
    kind, out, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    Path(out).mkdir(parents=True, exist_ok=True)
    {"clip": clip_main, "t5": t5_main}[kind](out, seed)
