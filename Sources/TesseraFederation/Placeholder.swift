// The federation domain lands with the Federation issue.
