"""Outbound campaigns: contact lists, pacing, answering-machine detection and the calls they place (issue 15)."""
