"""SIP/RTP stack: sans-I/O protocol cores (parser, transactions, dialogs, SDP, RTP) and a thin asyncio edge."""
