print("tessera-participant: not built yet")
