"""Phrase banks the generator composes review, post, chat and refund text from."""

from __future__ import annotations

# category -> language -> phrases. Negative texts are labelled with the
# category in the ground truth, so a classifier can be scored against it.
NEGATIVE = {
    "product_quality": {
        "zh": [
            "用了三天就坏了，质量太差",
            "屏幕有坏点，非常失望",
            "充电的时候电池鼓包了，太危险",  # a safety hazard (fct_negative_feedback.is_safety)
            "做工粗糙，边缘有毛刺",
            "开机就死机，垃圾产品",
        ],
        "zh_hant": ["用了三天就壞了，質量太差", "螢幕有壞點，非常失望", "充電時電池鼓包了，太危險"],
        "en": [
            "Stopped working after a week, poor quality",
            "The screen cracked on day two, very disappointed",
            "The charger started smoking while charging",
        ],
    },
    "logistics": {
        "zh": ["快递太慢了，等了十天才到", "包装破损，盒子都压扁了", "物流信息一直不更新", "发错货了，还要自己寄回去"],
        "zh_hant": ["快遞太慢了，等了十天才到", "包裝破損"],
        "en": ["Delivery took two weeks, way too slow", "Package arrived damaged", "Wrong item shipped to me"],
    },
    "service": {
        "zh": ["客服态度很差，问了半天没人理", "售后推来推去，不解决问题", "客服一直不回复，太失望了"],
        "zh_hant": ["客服態度很差", "售後推來推去，不解決問題"],
        "en": ["Customer service never replied", "Support was rude and useless", "After-sales refused to help me"],
    },
    "price": {
        "zh": ["刚买就降价了，太坑了", "价格比别家贵很多，不值", "双十一先涨价再打折，套路"],
        "zh_hant": ["剛買就降價了，太坑了"],
        "en": ["Price dropped right after I bought it, feel cheated", "Way overpriced for what it is"],
    },
    "usability": {
        "zh": ["说明书看不懂，设置太复杂", "App 连不上设备，不好用", "操作很麻烦，老人根本不会用"],
        "zh_hant": ["說明書看不懂，設置太複雜"],
        "en": ["The app keeps disconnecting, hard to use", "Setup is confusing and the manual is useless"],
    },
}

POSITIVE = {
    "zh": [
        "非常好用，推荐给大家",
        "质量很好，物流也快",
        "客服很耐心，点赞👍",
        "性价比很高，会回购",
        "颜值很高，很喜欢❤️",
        "已经是第三台了，一直很满意",
    ],
    "zh_hant": ["非常好用，推薦給大家", "質量很好，物流也快", "很喜歡❤️"],
    "en": [
        "Love it, works perfectly",
        "Great quality and fast shipping 😀",
        "Excellent support, thanks!",
        "Best purchase this year",
    ],
}

NEUTRAL = {
    "zh": [
        "请问这个型号支持快充吗？",
        "今晚几点开始直播？",
        "收到了，还没开始用",
        "有没有深圳的朋友一起参加活动",
        "新版本什么时候推送",
    ],
    "zh_hant": ["請問這個型號支持快充嗎？", "今晚幾點開始直播？"],
    "en": [
        "Does this model support fast charging?",
        "When is the next live stream?",
        "Just received it, will try tomorrow",
    ],
}

EMOJI = ["😂", "👍", "🙏", "❤️", "🎉", "😭", "🔥", "[微笑]", "[强]", "😅"]

FORUM_TOPIC_TITLES = {
    "zh": ["新品开箱", "使用心得分享", "固件更新讨论", "售后求助", "同城活动报名", "摄影作品分享"],
    "en": ["Unboxing the new model", "Tips and tricks", "Firmware update thread", "Help needed"],
}

REFUND_REASONS_OTHER = ["不想要了", "拍错了", "七天无理由退货", "Changed my mind", "重复下单"]

# What a real community's texts add around the point they make: a product, a number of days, a city,
# an order. The benchmark's communities (bench.VOLUMES, Volume.distinct_texts) put one of these
# before each text, so that, as in real data, nearly every text is said once; the sample keeps its
# short banks (its texts repeat, which the tests' figures are computed on). None of them carries a
# sentiment or a category cue.
PRODUCT_SERIES = ["X", "S", "Air ", "Mini ", "Pro ", "Lite ", "Max ", "Neo ", "Go ", "Plus "]
CITIES = {
    "zh": ["北京", "上海", "广州", "深圳", "杭州", "成都", "武汉", "南京", "西安", "重庆", "苏州", "长沙"],
    "zh_hant": ["台北", "香港", "高雄", "台中", "澳門", "新竹"],
    "en": ["London", "Singapore", "Sydney", "Toronto", "Seattle", "Berlin", "Dublin", "Austin"],
}
CONTEXTS = {
    "zh": [
        "第{k}次买{product}了，",
        "{product}用了{n}天，",
        "在{city}门店提的{product}，",
        "订单尾号{order}，",
        "{product}到手{m}小时，",
        "{city}的同事也在用{product}，",
    ],
    "zh_hant": ["第{k}次買{product}了，", "{product}用了{n}天，", "在{city}門市取的{product}，", "訂單尾號{order}，"],
    "en": [
        "Bought the {product} {n} days ago. ",
        "Order {order}: ",
        "Picked up my {product} in {city}. ",
        "Day {n} with the {product}: ",
        "My second {product} in {n} days ({city}). ",
    ],
}
