#!/usr/bin/python3
"""Test double of the freedesktop notification server (org.freedesktop.Notifications) on the session bus.

Appends one JSON line per Notify call to LOG. With --invoke KEY, it answers every notification that offers the
action KEY by emitting ActionInvoked(id, KEY) shortly after, as a click on that action would."""
import argparse
import json

import dbus
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib

NAME = "org.freedesktop.Notifications"


class Server(dbus.service.Object):
    def __init__(self, bus, log, invoke):
        self.count = 0
        self.log = log
        self.invoke = invoke
        self.name = dbus.service.BusName(NAME, bus, do_not_queue=True)
        super().__init__(self.name, "/org/freedesktop/Notifications")

    @dbus.service.method(NAME, in_signature="susssasa{sv}i", out_signature="u")
    def Notify(self, app, replaces, icon, summary, body, actions, hints, timeout):
        self.count += 1
        nid = self.count
        record = {"id": nid, "app": str(app), "summary": str(summary), "body": str(body),
                  "actions": [str(a) for a in actions], "icon": str(icon)}
        with open(self.log, "a") as f:
            f.write(json.dumps(record) + "\n")
        keys = [str(a) for a in actions][0::2]
        if self.invoke and self.invoke in keys:
            GLib.timeout_add(300, self._invoke, nid)
        return dbus.UInt32(nid)

    def _invoke(self, nid):
        self.ActionInvoked(dbus.UInt32(nid), self.invoke)
        self.NotificationClosed(dbus.UInt32(nid), dbus.UInt32(2))
        return False

    @dbus.service.method(NAME, in_signature="", out_signature="as")
    def GetCapabilities(self):
        return ["body", "actions"]

    @dbus.service.method(NAME, in_signature="", out_signature="ssss")
    def GetServerInformation(self):
        return ("fake-notifyd", "ltx-tests", "1.0", "1.2")

    @dbus.service.method(NAME, in_signature="u", out_signature="")
    def CloseNotification(self, nid):
        self.NotificationClosed(nid, dbus.UInt32(3))

    @dbus.service.signal(NAME, signature="uu")
    def NotificationClosed(self, nid, reason):
        pass

    @dbus.service.signal(NAME, signature="us")
    def ActionInvoked(self, nid, key):
        pass


parser = argparse.ArgumentParser()
parser.add_argument("log")
parser.add_argument("--invoke")
args = parser.parse_args()
dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
server = Server(dbus.SessionBus(), args.log, args.invoke)
print("READY", flush=True)
GLib.MainLoop().run()
