#!/usr/bin/env python3
"""Reference splits for every pre-tokenizer family cleave knows, from Hugging
Face tokenizers (Oniguruma regexes, its ByteLevel and Digits pre-tokenizers).

    python3 tests/gen_pretok_refs.py    # writes tests/data/pretok_refs.txt

test_pretokenize checks cleave's splits against the file without Python. It
covers the families no fixture vocabulary uses (llama3, qwen2, gpt-4o, tekken,
deepseek-v3, falcon, bloom, viking) as well as the others.

Format: '#' lines are comments; '# families: A B ...' names the columns. Each
other line is a string, escaped as in gen_tokenizer_refs.py, then per family a
tab and the end offsets (in code points) of its pieces, space-separated.

The patterns for llama3, qwen2, gpt-4o and tekken come from transformers, gpt-2
from tokenizers' own ByteLevel split, starcoder from Digits + ByteLevel; the
DeepSeek, Falcon and BLOOM sequences are the ones their tokenizer.json files use
(DeepSeek LLM's list of cased-letter ranges written as \\p{Lu}\\p{Ll}\\p{Lt}).
Needs: pip install transformers tokenizers.
"""
import os
import random
import sys

from tokenizers import Regex, pre_tokenizers as pt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from gen_tokenizer_refs import escape, install_torch_stand_in  # noqa: E402


def splits(*patterns):
    return pt.Sequence([pt.Split(Regex(p), behavior="isolated") for p in patterns])


def families():
    install_torch_stand_in()
    from transformers.integrations.gguf import gguf_tokenizer_mapping as m
    byte_level = pt.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=True)
    cjk = "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+"
    bloom = " ?[^(\\s|.,!?\u2026\u3002\uff0c\u3001\u0964\u06d4\u060c)]+"
    return {
        "gpt-2": byte_level,
        "llama3": splits(m._LLAMA3_SPLIT),
        "qwen2": splits(m.GGUF_PRE_TOKENIZER_SPLITS["qwen2"]),
        "starcoder": pt.Sequence([pt.Digits(individual_digits=True), byte_level]),
        "deepseek-llm": splits(
            "[\r\n]", "\\s?[\\p{Lu}\\p{Ll}\\p{Lt}]+",
            "\\s?[!-/:-~\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002]+", "\\s+$", cjk,
            "\\p{N}+"),
        "deepseek-coder": splits("[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", cjk, "\\p{N}"),
        "deepseek-v3": splits(
            "\\p{N}{1,3}", "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
            "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+"
            "| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"),
        "falcon": splits(
            "[\\p{P}\\$\\+<=>\\^~\\|`]+",
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
            "[0-9][0-9][0-9]"),
        "bloom": splits(bloom),
        "viking": splits(bloom, "\\p{N}"),
        "gpt-4o": splits(m._GPT4O_SPLIT),
        "tekken": splits(m._TEKKEN_SPLIT),
    }


# Pieces strings are built from: every kind of character the splits treat
# differently, and runs of them.
ATOMS = [
    "hello", "World", "THE", "a", "I", "camelCase", "x2", "naïve", "Ünïcödé", "ǅemal", "straße",
    "123", "4567", "1234567", "0", "٣٤٥", "²³", "½", "Ⅻ", "１２", "3.14", "1,000",
    " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n ", "\u00a0", "\u3000", "\u2003", "\u200b",
    "'s", "'S", "'ll", "'LL", "'re", "'ve", "'m", "'d", "'D", "'t", "'x", "''", "don't", "WE'VE",
    ".", ",", "!", "?", "...", "!!!", "-", "--", "_", "__init__", "$", "+", "<", "=", ">", "^", "~",
    "|", "`", "@", "#", "%", "&", "*", "(", ")", "[", "]", "{", "}", "/", "\\", ":", ";", "\"",
    "“", "”", "‘", "’", "«", "»", "…", "—", "–", "•", "。", "，", "、", "！", "？", "：", "।", "۔", "،",
    "你好", "世界", "中文字", "こんにちは", "カタカナ", "한국어", "안녕", "ㄱ", "ｱ",
    "مرحبا", "שלום", "ܫܠܡܐ", "नमस्ते", "สวัสดี", "Ελλάδα", "Привет", "ÅÄÖ",
    "e\u0301", "a\u0308", "\u0301", "\u0927\u094d", "😀", "👍🏽", "👨‍👩‍👧", "🇫🇷", "❤️", "✅",
    "∑", "√", "≤", "→", "€", "£", "©", "™", "°", "µ", "ﬁ", "𝔘", "𐌰", "\x00", "\x1b", "\x7f",
]


def strings(count=320, seed=7):
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 9)):
            atom = rng.choice(ATOMS)
            if rng.random() < 0.1:
                atom = atom * rng.randint(2, 6)
            parts.append(atom)
        out.append("".join(parts))
    # Long runs and edge cases.
    out += ["", " " * 40 + "x", "x" + " " * 40, "\n" * 10 + " a", "a" + "!" * 30 + "b",
            "1" * 25, "中" * 20 + " ", "   \n\n   \t", "A" * 30 + "a", "'s'S'll" * 3]
    return out


def main():
    fams = families()
    names = list(fams)
    texts = strings()
    path = os.path.join(ROOT, "tests", "data", "pretok_refs.txt")
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        import tokenizers
        f.write(f"# Pre-tokenizer splits from Hugging Face tokenizers {tokenizers.__version__};\n")
        f.write("# generated by tests/gen_pretok_refs.py, format described there.\n")
        f.write("# families: " + " ".join(names) + "\n")
        for s in texts:
            cols = [escape(s)]
            for name in names:
                pieces = fams[name].pre_tokenize_str(s)
                ends = [end for _, (_, end) in pieces]
                if ends:
                    assert pieces[-1][1][1] == len(s), (name, s)
                cols.append(" ".join(map(str, ends)))
            f.write("\t".join(cols) + "\n")
    print(f"{path}: {len(texts)} strings x {len(names)} families")


if __name__ == "__main__":
    main()
