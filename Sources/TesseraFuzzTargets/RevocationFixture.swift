/// Written by `Scripts/fuzz-seeds`: the certificate of the throwaway CA whose key signed the
/// seed lists in `Fuzz/Corpus/revocation_list` (the key was discarded after signing).
enum RevocationFixture {
    static let caCertificatePEM = """
        -----BEGIN CERTIFICATE-----
        MIIBijCCATGgAwIBAgIUSIXCgaL86mfVWJZ8QEmJ521zlQIwCgYIKoZIzj0EAwIw
        IjEgMB4GA1UEAwwXVGVzc2VyYSBmdXp6IGZpeHR1cmUgQ0EwHhcNMjYxMjA0MDYx
        NjQyWhcNMzYxMjAyMDYxNjQyWjAiMSAwHgYDVQQDDBdUZXNzZXJhIGZ1enogZml4
        dHVyZSBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABBj2axQxBMnEI/5s4JnP
        6VJD26q392Yd5nbVVrS5VE+3SPvdOR2TQyYtAk7YCdoVIF+SH0MgGev3TiCGmhze
        KRyjRTBDMBIGA1UdEwEB/wQIMAYBAf8CAQAwDgYDVR0PAQH/BAQDAgEGMB0GA1Ud
        DgQWBBRDwog87Fm1Pv/Y8ZI/1L+mSODWdDAKBggqhkjOPQQDAgNHADBEAiANT4iV
        oP+x1DbfhUQSRNV3bJtIKrDI+xVldK88MSLa9AIgKDjIa6ZhyoNEcqoGoiNwN+Ea
        6/tgfKdrIf0luNEga1g=
        -----END CERTIFICATE-----
        """
}
