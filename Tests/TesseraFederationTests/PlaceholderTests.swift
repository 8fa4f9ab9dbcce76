import Testing
@testable import TesseraFederation
