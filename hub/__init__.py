"""The coordination hub (省协调系统): runs a remote evaluation; every state change becomes evidence."""
