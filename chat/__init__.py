"""Web chat: the domain parts that need no sockets or database (sans-I/O).

``widget_origin`` (which pages may open a tenant's widget), ``attachments`` (what a visitor
may send: images and PDF, checked by their bytes), ``search`` (Chinese and English words of
a transcript, segmented with jieba), ``faq`` (the FAQ bot: BM25 over the tenant's questions,
and when it hands the visitor to a person). ``callcenter.chat_service`` composes them with
the database, the sockets and the ACD.
"""
