"""Chinese labels the pages show for codes the API uses (kiosk tags, roles, form fields).

Channel and role labels are the models' (``models.CHANNEL_LABELS``, ``models.ROLE_LABELS``), one
table with figures, exports and the 操作日志.
"""

# Reasons a hall tablet offers after a bad rating; the codes go into ``tags``.
TAG_LABELS = {
    "wait": "等候时间长",
    "attitude": "态度不好",
    "inform": "一次性告知不到位",
    "system": "系统故障",
    "slow": "办理效率低",
    "other": "其他",
}

# Field names in ActionError, as the action forms label them.
FIELD_LABELS = {
    "assignee": "承办人",
    "contacted": "是否联系上评价人",
    "reason": "理由",
    "measures": "整改情况",
    "cause": "原因",
    "action": "整改措施",
    "satisfied": "评价人是否满意",
    "note": "备注",
}
