print("tessera-coordinator: not built yet")
