// Site PKI lands here (see the networked-runtime issue).
