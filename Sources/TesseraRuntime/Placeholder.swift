// Coordinator and participant services land here (see the networked-runtime issue).
