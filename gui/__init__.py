"""The Qt desktop app, in layers (each subpackage's docstring says what it may import):

* ``state``       evented models of what the user works on (psygnal, no Qt): the app state,
                  the image store, the shown document.  Everything else observes them.
* ``infra``       workers, settings, icons, the error hook: no knowledge of the app's parts.
* ``canvas``      the image view, its layers and the edit tools.
* ``panels``      docks and the status bar; they observe state and emit requests.
* ``dialogs``     every file dialog and message box, and the larger dialogs.
* ``menus``       the actions and where they appear.
* ``controllers`` the flows (open, save, segment, train, autosave); they receive the state,
                  the store, the settings and a parent widget, never the main window.
* ``main_window`` composes the parts and connects them; ``app`` starts it.
"""
