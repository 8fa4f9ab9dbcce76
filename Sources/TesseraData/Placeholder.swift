// Dataset loaders and generators land with the Federation issue.
