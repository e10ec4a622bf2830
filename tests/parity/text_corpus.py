# ruff: noqa: RUF001  (full-width punctuation is what this file is about)
"""The text corpus of the front-end parity test and a small ``bpe.model`` trained on it.

:data:`SENTENCES` are the varied inputs (numbers, dates, money, abbreviations, quotes,
mixed zh/en, pinyin, tech terms, long texts); :func:`bpe_model` trains a SentencePiece BPE
model (vocab 1000) on a generated mixed English/Chinese corpus, once, cached outside the
clone, for every parity test that needs a tokenizer (the official ``bpe.model`` cannot be
downloaded here).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from indextts_mlx.testing import train_bpe_model
from indextts_mlx.text.tokenize import tokenize_by_cjk_char
from parity.harness import cached_file

MAX_TOKENS = 120
VOCAB_SIZE = 1000

LONG_EN = (
    "In the early hours of March 3rd, 2024, the research team at the lab released version "
    "2.1 of their open-source speech model, which had been trained on more than 55,000 hours "
    "of audio collected from podcasts, audiobooks and public lectures; according to Dr. Chen, "
    "who led the project, the new release cuts the error rate by 12.5% while running 3 times "
    "faster on a single GPU, and it supports both English and Chinese out of the box. "
    "However, she warned that the model still struggles with very long sentences, rare names "
    "and numbers such as 1,234,567 or phone numbers like 555-0199, so the team plans another "
    "update before the end of the year, possibly on December 31st at 11:59 PM."
)
LONG_ZH = (
    "《盗梦空间》是由美国华纳兄弟影片公司出品的电影，由克里斯托弗·诺兰执导并编剧，"
    "莱昂纳多·迪卡普里奥、玛丽昂·歌迪亚、约瑟夫·高登-莱维特、艾利奥特·佩吉、汤姆·哈迪等联袂主演，"
    "2010年7月16日在美国上映，2010年9月1日在中国内地上映，2020年8月28日在中国内地重映。"
    "影片剧情游走于梦境与现实之间，被定义为“发生在意识结构内的当代动作科幻片”，"
    "讲述了由莱昂纳多·迪卡普里奥扮演的造梦师，带领特工团队进入他人梦境，"
    "从他人的潜意识中盗取机密，并重塑他人梦境的故事。"
)

SENTENCES: tuple[str, ...] = (
    # upstream front.py self-test cases
    "IndexTTS 正式发布1.0版本了，效果666",
    "晕XUAN4是一种GAN3觉",
    "我爱你！",
    "I love you!",
    "“我爱你”的英语是“I love you”",
    "2.5平方电线",
    "共465篇，约315万字",
    "2002年的第一场雪，下在了2003年",
    "速度是10km/h",
    "现在是北京时间2025年01月11日 20:00",
    "他这条裤子是2012年买的，花了200块钱",
    "电话：135-4567-8900",
    "1键3连",
    "他这条视频点赞3000+，评论1000+，收藏500+",
    "这是1024元的手机，你要吗？",
    "受不liao3你了",
    "“衣裳”不读衣chang2，而是读衣shang5",
    "最zhong4要的是：不要chong2蹈覆辙",
    "不zuo1死就不会死",
    "See you at 8:00 AM",
    "8:00 AM 开会",
    "Couting down 3, 2, 1, go!",
    "数到3就开始：1、2、3",
    "This sales for 2.5% off, only $12.5.",
    "5G网络是4G网络的升级版，2G网络是3G网络的前身",
    "苹果于2030/1/2发布新 iPhone 2X 系列手机，最低售价仅 ¥12999",
    "这酒...里...有毒...",
    "只有,,,才是最好的",
    "babala2是什么？",
    "用beta1测试",
    "have you ever been to beta2?",
    "where's the money?",
    "who's there?",
    "which's the best?",
    "how's it going?",
    "今天是个好日子 it's a good day",
    "such as XTTS, CosyVoice2, Fish-Speech, and F5-TTS",
    "GPT-5-Nano is the smallest and fastest variant in the GPT-5 model family.",
    "GPT-5-Nano 是 GPT-5 模型家族中最小且速度最快的变体",
    "2025/09/08 IndexTTS-2 全球发布",
    "Here are some highly-rated M.2 NVMe SSDs: Samsung 9100 PRO PCIe 5.0 SSD M.2, $139.99",
    "we dive deep into the showdown between DisplayPort 1.4 and HDMI 2.1 to determine which "
    "is the best choice for gaming enthusiasts",
    "约瑟夫·高登-莱维特（Joseph Gordon-Levitt is an American actor）",
    "蒂莫西·唐纳德·库克（英文名：Timothy Donald Cook），通称蒂姆·库克（Tim Cook），"
    "美国商业经理、工业工程师和工业开发商，现任苹果公司首席执行官。",
    # numbers, dates, money, abbreviations
    "The meeting is on 2024-05-17 at 09:30, room 101.",
    "Mr. Smith paid $1,234.56 (about 20%) for 3 tickets.",
    "Dr. Jones was born on Jan. 5th, 1990, in St. Louis.",
    "It costs €15 or £12.99, roughly ¥100.",
    "The temperature dropped to -5°C overnight; 3/4 of the crops froze.",
    "我的体重是65.5公斤，身高1.78米。",
    "今年的营收增长了-3.5%，比去年少了1200万元。",
    "会议定于2024年12月31日下午3点半举行，共有1,500人参加。",
    "第3名的成绩是9.58秒，比第1名慢了0.02秒。",
    "比分是3:2，主队赢了。",
    # punctuation, quotes, brackets, ellipsis
    'She said, "Wait... what?!" and left (quietly).',
    "他说：“你好吗？”我说：“很好……谢谢！”",
    "【通知】《红楼梦》第1回～第5回；请在「周一」前读完。",
    "Hello -- world; foo: bar [sic] ~ baz.",
    "Really?! No way!!! Yes...",
    "It's 'quoted', isn't it? That's what she's saying.",
    # mixed zh/en, tech terms, emails
    "我正在用 Python 3.11 和 PyTorch 2.13 训练 GPT-4o 模型。",
    "Please email john@example.com for details.",
    "john@example.com",
    "请发邮件到 support@abc.com 联系我们。",
    "The RTX-4090 and A100-80GB are both used for LLaMA-3-70B inference.",
    "使用 CUDA-12 编译 F5-TTS 和 CosyVoice-2 的代码。",
    "The URL is https://example.com/path?q=1, visit it.",
    "美元符号是$。你好。。。",
    # other CJK ranges (kana, Hangul, half-width katakana) and em dashes
    "こんにちは、世界！안녕하세요 ｶﾀｶﾅ",
    "张三—李四说：第1-0场",
    # pinyin
    "这个字读xing2还是hang2？",
    "ni3 hao3, wo3 shi4 xue2sheng1.",
    # single characters and short inputs (the one-character shortcut)
    "a",
    " 好 ",
    "?",
    "OK",
    # very long sentences that must be split
    LONG_EN,
    LONG_ZH,
    "这是一个没有任何标点符号的超长句子" * 12,  # no punctuation: hard chunks
    ", ".join(f"item number {i}" for i in range(1, 60)) + ".",
    " - ".join(["alpha beta gamma delta"] * 40),
    "我们今天学习了很多东西" + "，".join(["然后又学习了新的知识"] * 20) + "。",
)

# Characters the Chinese normaliser produces (numbers, units) for the BPE corpus.
_ZH_EXTRA = (
    "零一二三四五六七八九十百千万亿点两负正年月日号时分秒点半元块毛角美欧英镑日圆度摄氏"
    "百分之比公斤克千米厘毫升平方米加减乘除等于第名约共篇字"
)
_EN_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen twenty "
    "thirty forty fifty sixty seventy eighty ninety hundred thousand million billion point "
    "and the of a to in is it at on for by with dollars cents euros pounds yen percent "
    "first second third fourth fifth january february march april may june july august "
    "september october november december o'clock a m p m doctor mister saint minus degrees "
    "celsius dot at com slash dash hyphen kilometers per hour kilograms meters"
)


def _corpus() -> list[str]:
    """Deterministic training lines in the tokenizer's input form (upper case, CJK split)."""
    lines = [tokenize_by_cjk_char(s) for s in SENTENCES]
    words = _EN_WORDS.split()
    for i in range(400):
        picked = [words[(i * 7 + k * 13) % len(words)] for k in range(12)]
        zh = "".join(_ZH_EXTRA[(i * 5 + k * 3) % len(_ZH_EXTRA)] for k in range(10))
        punct = ",.!?'-…"[i % 7]
        lines.append(tokenize_by_cjk_char(f"{' '.join(picked)} {punct} {zh} {punct}"))
    return lines


def bpe_model() -> Path:
    """The cached ``bpe.model`` (built on first use)."""
    lines = _corpus()
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]

    def build(path: Path) -> None:
        train_bpe_model(lines, path, VOCAB_SIZE, hard_vocab_limit=False)

    return cached_file("text-bpe", "bpe.model", build, corpus=digest, vocab=VOCAB_SIZE)
