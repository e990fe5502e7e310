"""Byline's Slack front end: a bolt app answering mentions, DMs and /byline."""
