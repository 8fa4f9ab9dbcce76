/// Written by `Scripts/fuzz-seeds`: the certificate of the throwaway CA whose key signed the
/// seed lists in `Fuzz/Corpus/revocation_list` (the key was discarded after signing).
enum RevocationFixture {
    static let caCertificatePEM = """
        -----BEGIN CERTIFICATE-----
        MIIBizCCATGgAwIBAgIUVSrzvg0HmZCpmhs21dD9+CQWc7QwCgYIKoZIzj0EAwIw
        IjEgMB4GA1UEAwwXVGVzc2VyYSBmdXp6IGZpeHR1cmUgQ0EwHhcNMjYxMjA0MDYw
        MTE1WhcNMzYxMjAyMDYwMTE1WjAiMSAwHgYDVQQDDBdUZXNzZXJhIGZ1enogZml4
        dHVyZSBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABD1Cjexy7ouYp44Gl9Vk
        bjYy6o1lrEFw2HvCgp9wSIeWS2SILCkfgnov+5jr9e+g7O9/fYN0w5WDETsGHrZw
        oOGjRTBDMBIGA1UdEwEB/wQIMAYBAf8CAQAwDgYDVR0PAQH/BAQDAgEGMB0GA1Ud
        DgQWBBTvvl2YLclLYMvD/etmoJHU21yl+DAKBggqhkjOPQQDAgNIADBFAiEA2rSV
        hBgOGbQIcQHXILQroYbW5BOa2ayGAIDKKG63mAACICUNjy4FoNeCYRnD59YdaOyI
        4KXlpORNBnKI8Pm5c0+s
        -----END CERTIFICATE-----
        """
}
