"""Jinja2 templates of the leaderboard pages (a package so that they ship as package data)."""
