import Testing
@testable import TesseraData
