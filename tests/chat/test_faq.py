"""The FAQ bot (``chat.faq``): BM25 over a tenant's Q&A pairs, and when it hands off to a person.

``ENTRIES``, ``PARAPHRASES`` and ``OFF_TOPIC`` are the set ``ANSWER_THRESHOLD`` was chosen on:
a shop's questions as a tenant would store them, questions asked in other words than any stored
phrasing, and questions no entry answers (unrelated ones, and ones sharing a word with an entry).
Every paraphrase must find its entry at or above the threshold and every off-topic question must
stay below it.
"""

from __future__ import annotations

import pytest

from chat.faq import ANSWER_THRESHOLD, BotReply, FaqBot, FaqEntry, FaqIndex

ENTRIES = [
    FaqEntry(1, "怎么申请退款？", ("退款流程是什么", "我想退钱", "钱可以退回来吗"),
             "在“我的订单”中选择订单，点击“申请退款”，审核通过后原路退回。"),
    FaqEntry(2, "退款多久到账？", ("退款什么时候到账", "退款还没收到"), "退款审核通过后 1-3 个工作日到账。"),
    FaqEntry(3, "什么时候发货？", ("下单后多久发货", "订单还没发货"), "付款后 48 小时内发货。"),
    FaqEntry(4, "怎么查询快递物流？", ("我的快递到哪了", "物流信息在哪里看", "查快递单号"),
             "在“我的订单”中点击“查看物流”即可看到快递单号和物流信息。"),
    FaqEntry(5, "怎么开发票？", ("可以开增值税专用发票吗", "发票抬头怎么填", "电子发票在哪里下载"),
             "在订单详情中点击“申请开票”，电子发票开具后可在此下载。"),
    FaqEntry(6, "忘记密码怎么办？", ("怎么重置密码", "登录不了账号", "修改登录密码"),
             "在登录页点击“忘记密码”，用注册手机号接收验证码后设置新密码。"),
    FaqEntry(7, "你们的营业时间是几点到几点？", ("几点开门", "周末营业吗", "工作时间"),
             "我们每天 9:00-21:00 营业，节假日照常。"),
    FaqEntry(8, "怎么退货？", ("退货流程", "商品不满意可以退吗", "七天无理由退货"),
             "签收后 7 天内可在订单中申请退货，寄回后我们会尽快处理。"),
    FaqEntry(9, "怎么换货？", ("尺码不合适可以换吗", "换一个颜色"), "签收后 7 天内可申请换货，请保持商品完好。"),
    FaqEntry(10, "下单后可以修改收货地址吗？", ("地址填错了", "改收货人电话"),
             "发货前可在订单详情中修改收货地址，发货后请联系快递。"),
    FaqEntry(11, "怎么取消订单？", ("不想要了能取消吗", "订单取消"), "未发货的订单可在订单详情中直接取消。"),
    FaqEntry(12, "优惠券怎么用？", ("优惠券无法使用", "在哪里领券"), "结算时选择可用的优惠券即可抵扣。"),
]

PARAPHRASES = [
    ("我想退钱，该怎么操作", 1), ("退款流程是什么", 1), ("申请退款的步骤", 1), ("如何办理退款", 1),
    ("退款几天能到账", 2), ("退款一般多久能收到", 2),
    ("我买的东西什么时候能发货", 3), ("下单以后多久发货", 3),
    ("快递到哪里了", 4), ("怎么看物流", 4), ("快递单号在哪查", 4),
    ("能开发票吗", 5), ("发票抬头写错了怎么办", 5), ("电子发票怎么下载", 5),
    ("密码忘了", 6), ("登录密码想改一下", 6), ("账号登录不上去", 6),
    ("你们几点开门", 7), ("周末营业吗？", 7), ("请问营业时间", 7),
    ("收到的商品不满意想退货", 8), ("退货怎么弄", 8),
    ("衣服尺码不合适能换吗", 9), ("想换个颜色", 9),
    ("收货地址填错了", 10), ("订单不想要了怎么取消", 11), ("优惠券用不了", 12),
]

OFF_TOPIC = [
    "今天天气怎么样", "你叫什么名字", "附近有什么好吃的餐厅", "推荐一部电影", "股票明天会涨吗",
    "帮我写一首诗", "1+1等于几", "你好", "谢谢", "哈哈哈", "我想买一台笔记本电脑", "你们招聘吗",
    "怎么做红烧肉", "火车票怎么买", "hello", "what is the weather like today", "？？？",
    # near the shop's topics, sharing a word with an entry, yet answered by none
    "你们的快递员态度太差了，我要投诉", "营业执照可以看一下吗", "商品有没有现货", "时间过得真快", "我的电话号码换了",
    "颜色有几种", "这个商品质量怎么样", "订单号是多少位", "怎么成为你们的会员", "你们有实体店吗", "可以货到付款吗",
    "怎么联系商家", "账号可以注销吗", "积分怎么兑换", "退款退到我的银行卡了吗", "有没有优惠活动", "快递费谁出",
]
# Measured with the set above and not asserted: 密码学是什么 (0.50), 周末去哪里玩 (0.52) and 发货地在哪里
# (0.63) reach the threshold and get their nearest entry's answer; matching words cannot tell them from
# 忘记密码, 周末营业吗 or 什么时候发货. Paraphrases score 0.54 and more, plain off-topic questions 0.16 at most.


@pytest.fixture(scope="module")
def index() -> FaqIndex:
    return FaqIndex.build(ENTRIES)  # the first build loads jieba's dictionary: about a second


@pytest.mark.parametrize(("question", "entry_id"), PARAPHRASES)
def test_a_paraphrase_finds_its_entry_above_the_threshold(index: FaqIndex, question: str, entry_id: int) -> None:
    match = index.best(question)
    assert match is not None
    assert (match.entry.id, match.confidence >= ANSWER_THRESHOLD) == (entry_id, True), match


@pytest.mark.parametrize("question", OFF_TOPIC)
def test_an_off_topic_question_stays_below_the_threshold(index: FaqIndex, question: str) -> None:
    match = index.best(question)
    assert match is None or match.confidence < ANSWER_THRESHOLD, match


def test_confidence_is_one_for_a_stored_phrasing_and_between_zero_and_one(index: FaqIndex) -> None:
    exact = index.best("怎么申请退款？")
    partial = index.best("退款和天气")
    assert exact is not None and exact.confidence == 1.0 and exact.entry.id == 1
    assert partial is not None and 0 < partial.confidence < ANSWER_THRESHOLD


def test_an_empty_index_matches_nothing() -> None:
    assert FaqIndex.build([]).best("怎么申请退款？") is None


def test_english_entries_are_matched_by_lower_case_words() -> None:
    index = FaqIndex.build([FaqEntry(1, "How do I get a refund?", ("refund policy",), "Open your order."),
                            FaqEntry(2, "When do you ship?", ("delivery time",), "Within 48 hours.")])
    match = index.best("REFUND please")
    assert match is not None and match.entry.id == 1 and match.confidence >= ANSWER_THRESHOLD


def test_the_bot_answers_with_the_entry(index: FaqIndex) -> None:
    assert FaqBot(index).reply("我想退钱，该怎么操作") == BotReply("answer", ENTRIES[0].answer, entry_id=1,
                                                              confidence=1.0)


@pytest.mark.parametrize("text", ["人工", "我要转人工", "人工客服", "找真人", "客服在吗", "I want an AGENT",
                                  "talk to a human please", "转agent", "a real person", "operator"])
def test_asking_for_a_person_hands_off_at_once(index: FaqIndex, text: str) -> None:
    reply = FaqBot(index).reply(text)
    assert (reply.kind, reply.reason) == ("handoff", "person")


@pytest.mark.parametrize("text", ["my agenda", "personal details", "humanity"])
def test_words_that_only_contain_a_handoff_word_do_not_hand_off(index: FaqIndex, text: str) -> None:
    assert FaqBot(index).reply(text).kind == "clarify"


def test_the_first_miss_asks_to_rephrase_and_the_second_hands_off(index: FaqIndex) -> None:
    bot = FaqBot(index, "en")
    first = bot.reply("今天天气怎么样")
    answered = bot.reply("退款流程是什么")
    second = bot.reply("推荐一部电影")
    assert (first.kind, first.reason) == ("clarify", "low-confidence")
    assert "agent" in first.text  # the way to a person is always offered
    assert answered.kind == "answer"
    assert (second.kind, second.reason) == ("handoff", "misses")


def test_a_rebuilt_bot_keeps_counting_its_misses(index: FaqIndex) -> None:
    assert FaqBot(index, misses=1).reply("今天天气怎么样").kind == "handoff"


@pytest.mark.parametrize(("locale", "expected"), [("zh-CN", "人工"), ("zh", "人工"), ("en-US", "agent"),
                                                  ("fr", "人工")])
def test_bot_lines_follow_the_locale(index: FaqIndex, locale: str, expected: str) -> None:
    assert expected in FaqBot(index, locale).reply("今天天气怎么样").text
