#!/usr/bin/env python3
"""Reference token ids from Hugging Face's tokenizer for real models' GGUF files.

    python3 tests/gen_tokenizer_refs.py            # all models below
    python3 tests/gen_tokenizer_refs.py gemma3-270m

For each model, builds the tokenizer transformers makes from the GGUF file
(AutoTokenizer.from_pretrained(dir, gguf_file=name)), tokenizes the strings of
strings() and writes tests/data/tokenizer_refs_<name>.txt, which
test_tokenizer_models compares cleave against without Python.

File format: '#' lines are comments ('# file: NAME' names the GGUF in the model
cache). Every other line is one string, tab-separated:
    text  ids_plain  ids_special  ids_full  lossless
text is escaped (\\\\, \\t, \\n, \\r, \\xHH for other control bytes and a leading
'#'); the ids are
space-separated:
    ids_plain:   encode(text, add_special_tokens=False, split_special_tokens=True)
                 (cleave: parse_special off, add_special off)
    ids_special: encode(text, add_special_tokens=False)  (parse_special on)
    ids_full:    encode(text)                            (both on)
    lossless:    1 when HF's decode(ids_plain) gives text back, else 0 (some
                 vocabularies cannot spell every byte, e.g. SmolLM2 lacks 0x1D)

Needs: pip install transformers tokenizers sentencepiece protobuf gguf. torch is
not needed: transformers' GGUF reader imports it for tensors only, so a stand-in
module is installed when torch is absent (the tokenizer path never touches it).
"""
import hashlib
import os
import random
import subprocess
import sys
import types
import importlib.machinery

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = ["smollm2-135m-instruct", "gemma3-270m"]


def install_torch_stand_in():
    try:
        import torch  # noqa: F401
        return False
    except ImportError:
        pass

    class Anything:
        def __init__(self, *a, **k):
            pass

        def __call__(self, *a, **k):
            return Anything()

        def __getattr__(self, name):
            return Anything()

        def __getitem__(self, key):
            return Anything()

        def __or__(self, other):
            return Anything()

        __ror__ = __or__

        def __mro_entries__(self, bases):
            return (object,)

    for name in ("torch", "torch.nn", "torch.nn.functional"):
        mod = types.ModuleType(name)
        mod.__spec__ = importlib.machinery.ModuleSpec(name, None)
        mod.__path__ = []
        mod.__getattr__ = lambda attr: Anything()
        sys.modules[name] = mod
    sys.modules["torch"].nn = sys.modules["torch.nn"]
    return True


def load_hf_tokenizer(path):
    stand_in = install_torch_stand_in()
    import transformers
    if stand_in:
        # The config half of from_pretrained(gguf_file=...) checks for torch
        # before reading metadata; the tokenizer itself does not need it.
        import transformers.modeling_gguf_pytorch_utils as gguf_utils
        gguf_utils.is_torch_available = lambda: True
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))
    return tok, transformers.__version__


# Pre-tokenizers transformers' GGUF loader does not map (it falls back to GPT-2's
# ByteLevel split for them), set as the models' own tokenizer.json files define
# them. SmolLM2's splits digits one by one before the GPT-2 rules.
def fix_pre_tokenizer(tok, path):
    from tokenizers import pre_tokenizers
    from transformers.integrations.gguf import get_gguf_tokenizer
    from transformers.integrations.gguf.gguf_tokenizer_mapping import GGUF_PRE_TOKENIZER_SPLITS
    pre = get_gguf_tokenizer(path)[1].get("pre_tokenizer_type")
    if pre in GGUF_PRE_TOKENIZER_SPLITS:
        return None
    if pre in ("smollm", "starcoder"):
        tok.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
        ])
        return f"'{pre}': Digits(individual_digits=True) then ByteLevel(use_regex=True)"
    return None


# --- the strings ----------------------------------------------------------------

PROSE = [
    "The quick brown fox jumps over the lazy dog.",
    "It was the best of times, it was the worst of times.",
    "Call me Ishmael. Some years ago - never mind how long precisely - I thought I would sail about a little.",
    "In 1969, Neil Armstrong became the first person to walk on the Moon.",
    "She sells seashells by the seashore; the shells she sells are surely seashells.",
    "Don't count your chickens before they're hatched, they'll say, but I'd rather we'd've known.",
    "\"Hello,\" she said. \"How are you?\" He replied: 'Fine, thanks!'",
    "The mitochondria is the powerhouse of the cell, producing ATP through oxidative phosphorylation.",
    "Please review the attached document and let me know if you have any questions by Friday.",
    "Large language models are trained on trillions of tokens of text scraped from the web.",
    "Mixture-of-Experts models route each token to a few experts out of many.",
    "The GPU has 24 GB of memory, but the model needs 140 GB at 16-bit precision.",
    "Once upon a time, in a land far, far away, there lived a king who had three daughters.",
    "What's the difference between a list and a tuple in Python? Lists are mutable; tuples aren't.",
    "I can't believe it's already December -- where did the year go?!",
    "Dr. Smith et al. (2021) reported a 3.5% increase, i.e. more than expected.",
    "THE END. ALL CAPS SENTENCES ARE SOMETIMES TOKENIZED DIFFERENTIALLY.",
    "camelCaseIdentifiers and snake_case_names and kebab-case-words",
    "e-mail: someone@example.com, web: https://www.example.org/path?query=1&x=y#frag",
    "Supercalifragilisticexpialidocious antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
    "A man, a plan, a canal: Panama.",
    "To be, or not to be, that is the question: Whether 'tis nobler in the mind to suffer...",
    "Q: What is 2+2? A: 4. Q: What's 10/3? A: about 3.333...",
    "First line.\nSecond line.\n\nNew paragraph after a blank line.",
    "Tabs\tseparate\tthese\tcolumns\tnicely.",
    "Windows line endings\r\nlook like this\r\n",
    "   Leading spaces and trailing spaces   ",
    "Multiple     spaces     between     words.",
    "ellipsis… em—dash en–dash “curly quotes” ‘single’ «guillemets» • bullet",
    "Price: $19.99, €5, £3.50, ¥1000, ₹250, ₿0.001",
]

CODE = [
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "for (int i = 0; i < n; i++) {\n\tsum += a[i] * b[i];\n}",
    "#include <stdio.h>\nint main(void) { printf(\"hello, world\\n\"); return 0; }",
    "const x = await fetch(`/api/items?id=${id}`).then(r => r.json());",
    "{\"name\": \"cleave\", \"version\": \"0.1.0\", \"tags\": [\"llm\", \"moe\"], \"ok\": true}",
    "<html><body><div class=\"main\"><p>Hello &amp; welcome</p></div></body></html>",
    "SELECT id, name FROM users WHERE age >= 18 AND name LIKE 'A%' ORDER BY id DESC;",
    "if [ -f \"$FILE\" ]; then\n  echo \"exists\" >&2\nfi",
    "fn main() -> Result<(), Box<dyn Error>> {\n    let v: Vec<u32> = (0..10).collect();\n    Ok(())\n}",
    "    x = [i**2 for i in range(10) if i % 2 == 0]  # squares of evens",
    "template <typename T> std::vector<T> v{1, 2, 3}; auto it = v.begin();",
    "a += b; c -= d; e *= f; g /= h; i %= j; k <<= 1; l >>= 2; m &&= n; o ||= p;",
    "x != y && y == z || !w; a->b; c::d; e => f; g ?? h; i?.j",
    "// comment\n/* block\n   comment */\n# python comment\n-- sql comment",
    "git commit -m \"Fix bug #123\" && git push origin main",
    "\t\t\tdeeply\n\t\t\t\tindented\n\t\tcode",
    "        return self._cache.get(key, default)",
    "@dataclass\nclass Point:\n    x: float = 0.0\n    y: float = 0.0",
    "matrix[i][j] = matrix[i-1][j-1] + 1 if s[i] == t[j] else 0",
    "printf(\"%5.2f %-10s %08x\\n\", 3.14159, \"str\", 0xDEADBEEF);",
]

NUMBERS = [
    "0", "7", "42", "123", "1234", "12345", "123456", "1234567", "12345678901234567890",
    "3.14159", "2.718281828", "-17", "+3", "1,000,000", "1.000.000,50", "1e-10", "6.022e23",
    "0xFF", "0b1010", "0o777", "2024-01-15", "15/01/2024", "12:34:56", "+1 (555) 123-4567",
    "v1.2.3", "1st 2nd 3rd 4th", "50%", "1/2 3/4", "½ ¾ ⅓", "² ³ ¹", "Ⅻ Ⅳ", "٠١٢٣٤٥٦٧٨٩",
    "१२३", "一二三", "１２３４５", "3.14.15.92", "007", "10,5 km", "x1y2z3", "a1b22c333d4444",
]

WHITESPACE = (
    [" " * n for n in (1, 2, 3, 4, 5, 8, 15, 16, 17, 31, 32, 33, 40, 63, 64, 65, 100)]
    + ["\t" * n for n in (1, 2, 3, 8, 31, 32, 40)]
    + ["\n" * n for n in (1, 2, 3, 5, 31, 32, 40)]
    + ["a" + " " * n + "b" for n in (1, 2, 3, 7, 31, 32, 33, 50)]
    + [" " * n + "word" for n in (1, 2, 5, 33)]
    + ["word" + " " * n for n in (1, 2, 5, 33)]
    + ["\n \n \n", " \n", "\n ", "\t \t", " \t\n\r ", "\r\n\r\n", "a\n\n\nb", "x \n\n y",
       "\u00a0non-breaking\u00a0space", "em\u2003space", "ideographic\u3000space",
       "zero\u200bwidth\u200bspace", "thin\u2009space", "line\u2028separator", "\u0085next line",
       "\x0bvertical\x0ctab form feed", "  \n  \n\t\t\n"]
)

EMOJI = [
    "😀", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷🇯🇵", "❤️", "✅ done", "I ❤️ NY", "🚀 launch in 3… 2… 1…",
    "🦙 llama", "🤗 Hugging Face", "😂😂😂", "👩🏾‍💻 coding", "☕️ + 🍩 = 😊", "#️⃣ 1️⃣ 2️⃣", "🏳️‍🌈",
    "🧑‍🔬🧪", "Emoji at end 🎉", "🎉Emoji at start", "mixed😀text😀here", "🐍 Python 🦀 Rust",
]

CJK = [
    "你好，世界！", "我爱自然语言处理。", "今天天气很好，我们去公园散步吧。", "机器学习是人工智能的一个分支。",
    "こんにちは、世界！", "日本語のテキストをトークン化します。", "カタカナとひらがなと漢字", "東京タワーは333メートルです。",
    "안녕하세요, 세계!", "한국어 토큰화 테스트입니다.", "中文English混合text", "繁體中文測試：臺灣",
    "「引用」と『二重引用』", "数字123和字母abc", "ｆｕｌｌｗｉｄｔｈ　ｔｅｘｔ",
]

ACCENTED = [
    "Äpfel", "naïve café", "résumé", "Straße", "Ærøskøbing", "Łódź", "Crème brûlée à la française",
    "Tiếng Việt có dấu", "Ελληνικά γράμματα", "Русский текст с буквой ё", "Čeština ěščřžýáíé",
    "español: ¿Dónde está? ¡Aquí!", "português: ação, coração", "Türkçe: ığüşöç İ", "Ångström",
    "e\u0301 (combining acute)", "n\u0303", "Zalgo: Z̷a̴l̸g̶o̵", "ﬁ ligature", "Ǆ ǅ ǆ title case",
    "Ünïcödé Ŵïţĥ Ŝţŗäñĝë Ĉĥäŕš", "ᚠᛇᚻ runes", "ꙮ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕄𝕒𝕥𝕙", "ΑΒΓ αβγ",
]

RTL = [
    "مرحبا بالعالم", "اللغة العربية جميلة.", "שלום עולם", "עברית משמאל לימין", "سلام دنیا",
    "العدد 123 والعدد ٤٥٦", "mixed עברית and English", "Arabic: كتاب, Hebrew: ספר",
    "\u202bembedded RTL\u202c", "ܫܠܡܐ", "اُردو زبان", "תל־אביב", "ﷺ ﷽",
]

SPECIAL = [
    "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>", "text<|endoftext|>more text", "<|im_start|>", "<|im_end|>", "<|im_start",
    "im_end|>", "<<|im_end|>>", "<|im_start|><|im_end|>", " <|im_end|> ",
    "<bos>", "<eos>", "<pad>", "<unk>", "<mask>", "<start_of_turn>user\nhi<end_of_turn>\n",
    "<start_of_turn>model\n", "<end_of_turn>", "<unused0>", "<unused99>", "<unused6241>",
    "<start_of_image>", "<end_of_image>", "[multimodal]", "<s>", "</s>", "<s>hello</s>",
    "<|begin_of_text|>", "<|eot_id|>", "<repo_name>", "<filename>", "<fim_prefix>",
    "<fim_middle><fim_suffix>", "<gh_stars>", "<|user|>", "<think>", "</think>",
    "<table><tr><td>cell</td></tr></table>", "<h1>Title</h1>", "<b>bold</b>",
    "<start_of_turn>user\n<start_of_image>What is in this picture?<end_of_turn>",
    "a<eos>b<bos>c", "<eos><eos>", "<|im_end|><|endoftext|>", "<", ">", "<|", "|>",
]

MISC = [
    "", " ", "a", "A", "aa", ".", "...", "!!!", "???", "!!!!!!", "''''''", "``````", "\"\"\"\"",
    "-----=====", "____", "****", "####", "~~~~", "----------", "==========", "||", "&&&",
    "I've been 'told he's there, 'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL",
    "It's IT'S it’s", "o'clock rock'n'roll", "don't DON'T Don'T", "'s 't 're 've 'm 'll 'd",
    "\x00\x01\x02 control chars \x1b[31m", "\x7f delete", "bell\x07", "tab\tand\x0bvtab",
    "\ufeffBOM at start", "soft\u00adhyphen", "replacement \ufffd char", "private \ue000 use",
    "math: ∀x∈ℝ, ∃y: x² + y² ≤ 1 ⇒ √(x²) ≤ 1", "arrows ← → ↑ ↓ ⇐ ⇒", "box ┌─┐ │ │ └─┘",
    "music 𝄞 ♩ ♪ ♫", "ancient 𐌰𐌱𐌲 𓀀𓀁", "braille ⠓⠑⠇⠇⠕", "hangul jamo 각",
    "Devanagari: नमस्ते दुनिया", "Thai: สวัสดีชาวโลก", "Georgian: გამარჯობა", "Armenian: Բարեւ",
    "Tamil: வணக்கம்", "Bengali: হ্যালো বিশ্ব", "Khmer: សួស្តី", "Amharic: ሰላም", "Mongolian: ᠮᠣᠩᠭᠣᠯ",
    "ﬀ ﬃ ﬄ", "ＡＢＣ ａｂｃ", "a\x1db", "x\U00040000y", "\x04\x06\x13\x14\x16 rare controls", "½⅓¼⅕⅙⅛", "™ © ® ℠", "°C °F ‰ ‱", "∞ ≠ ≈ ≡ ± × ÷",
]


def random_mix(rng, pools, count):
    """Strings glued from pieces of all kinds, with varied separators."""
    seps = ["", " ", "  ", "\n", "\t", " \n", ", ", ". ", "   "]
    out = []
    for _ in range(count):
        parts = [rng.choice(rng.choice(pools)) for _ in range(rng.randint(2, 5))]
        text = ""
        for p in parts:
            text += p + rng.choice(seps)
        out.append(text)
    return out


def strings():
    rng = random.Random(20240611)
    pools = [PROSE, CODE, NUMBERS, WHITESPACE, EMOJI, CJK, ACCENTED, RTL, SPECIAL, MISC]
    fixed = [s for pool in pools for s in pool]
    # A long prose paragraph and a long code file exercise longer inputs.
    fixed.append(" ".join(PROSE))
    fixed.append("\n".join(CODE))
    mixed = random_mix(rng, pools, 120)
    seen, out = set(), []
    for s in fixed + mixed:
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def escape(s):
    out = []
    for i, ch in enumerate(s):
        if ch == "#" and i == 0:  # a leading '#' would read as a comment
            out.append("\\x23")
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append("\\x%02x" % ord(ch))
        else:
            out.append(ch)
    return "".join(out)


def model_path(name):
    script = os.path.join(ROOT, "scripts", "get-model.sh")
    return subprocess.run([script, name], check=True, capture_output=True, text=True).stdout.strip()


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main():
    names = sys.argv[1:] or MODELS
    texts = strings()
    for name in names:
        path = model_path(name)
        tok, version = load_hf_tokenizer(path)
        import tokenizers
        as_loaded = [tok.encode(s, add_special_tokens=False, split_special_tokens=True) for s in texts]
        fixed = fix_pre_tokenizer(tok, path)
        out_path = os.path.join(ROOT, "tests", "data", f"tokenizer_refs_{name}.txt")
        lossy = changed = 0
        with open(out_path, "w", encoding="utf-8", newline="\n") as f:
            f.write(f"# Reference ids from Hugging Face transformers {version} (tokenizers "
                    f"{tokenizers.__version__})\n")
            f.write("# built from the GGUF file with AutoTokenizer.from_pretrained(dir, gguf_file=name);\n")
            f.write("# generated by tests/gen_tokenizer_refs.py, format described there.\n")
            f.write(f"# file: {os.path.basename(path)}\n")
            f.write(f"# sha256: {sha256(path)}\n")
            f.write(f"# strings: {len(texts)}\n")
            rows = []
            for s, loaded in zip(texts, as_loaded):
                plain = tok.encode(s, add_special_tokens=False, split_special_tokens=True)
                changed += plain != loaded
                special = tok.encode(s, add_special_tokens=False)
                full = tok.encode(s)
                lossless = tok.decode(plain) == s
                lossy += not lossless
                rows.append("\t".join([escape(s), " ".join(map(str, plain)),
                                        " ".join(map(str, special)), " ".join(map(str, full)),
                                        "1" if lossless else "0"]))
            if fixed:
                f.write(f"# pre-tokenizer set by the generator for {fixed}; transformers' loader\n"
                        f"# alone (GPT-2 split) gives other ids for {changed} of these strings.\n")
            f.write("\n".join(rows) + "\n")
        print(f"{out_path}: {len(texts)} strings ({lossy} that HF's decode does not give back; "
              f"pre-tokenizer fix: {fixed or 'none'}, changing {changed})")


if __name__ == "__main__":
    main()
