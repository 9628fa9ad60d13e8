"""Widgets docked in or laid into the main window (class list, file list, notices).

A panel gets its inputs and the app state explicitly and reports through signals; it never
imports or receives the main window.
"""
