"""What the platform itself says in a chat (``system`` messages), in the visitor's language.

Each notice has a code the pages may use to style or re-word it; the text is stored with the
message so the transcript reads the same everywhere."""

from __future__ import annotations

NOTICES: dict[str, dict[str, str]] = {
    "queued": {"zh-CN": "正在为您转接人工客服，请稍候…", "en": "Connecting you to an agent, please wait…"},
    "joined": {"zh-CN": "客服 {agent} 为您服务", "en": "{agent} has joined the chat"},
    "transferred": {"zh-CN": "正在为您转接其他客服，请稍候…", "en": "Transferring you to another agent, please wait…"},
    "agent_ended": {"zh-CN": "客服已结束本次会话", "en": "The agent ended the chat"},
    "visitor_ended": {"zh-CN": "您已结束本次会话", "en": "You ended the chat"},
    "visitor_left": {"zh-CN": "访客长时间未连接，会话已结束", "en": "The chat ended: the visitor was away too long"},
    "no_agent": {"zh-CN": "暂时没有客服可以接待，请留言，我们会尽快联系您。",
                 "en": "No agent is available right now. Please leave a message and we will get back to you."},
}


def notice(code: str, locale: str, **params: str) -> str:
    texts = NOTICES[code]
    return texts.get(locale, texts["en"]).format(**params)
