// tests/unit/smtp/data_decoder_test.cpp - smtp::data_decoder directly: where it stops, and a
// differential test against a simple whole-input reference model under random chunking.
#include <gtest/gtest.h>

#include <random>

#include "smtp/data_decoder.hpp"

namespace postern::smtp {
namespace {

TEST(SmtpDataDecoder, StopsRightAfterEndOfData) {
    data_decoder d(1000);
    std::string body;
    const std::string in = "a\r\n.\r\nNOOP\r\n";
    EXPECT_EQ(d.consume(in, body), 6u);
    EXPECT_TRUE(d.done());
    EXPECT_EQ(body, "a\r\n");
}

TEST(SmtpDataDecoder, NotDoneWithoutEnd) {
    data_decoder d(1000);
    std::string body;
    EXPECT_EQ(d.consume("a\r\n.\r", body), 5u);
    EXPECT_FALSE(d.done());
    EXPECT_EQ(d.consume("\n", body), 1u);
    EXPECT_TRUE(d.done());
    EXPECT_EQ(body, "a\r\n");
}

TEST(SmtpDataDecoder, StoresNothingPastTheLimit) {
    data_decoder d(10);
    std::string body;
    d.consume(std::string(5000, 'x') + "\r\n", body);
    EXPECT_TRUE(d.too_big());
    EXPECT_TRUE(body.empty());  // the first run already overflowed
    d.consume(".\r\n", body);
    EXPECT_TRUE(d.done());
}

TEST(SmtpDataDecoder, NormalizedSizeIsTheSizeAfterNormalizing) {
    for (const std::string in : {"", "a\r\n", "a\nb\rc\r\n", "\r", "\n\n", "\r\r\n", "x\r\n\r", "\n\r"}) {
        std::string body = in;
        ASSERT_EQ(normalize_line_endings(body, 1000), normalize_result::ok);
        EXPECT_EQ(normalized_size(in), body.size()) << testing::PrintToString(in);
    }
}

// Reference model: the whole input at once, one unit (CRLF, bare CR, bare LF, octet) at a time.
struct reference_result {
    bool done = false;
    std::size_t consumed = 0;
    std::string body;
};
reference_result reference(const std::string& s) {
    reference_result r;
    bool line_start = true;
    std::size_t i = 0;
    auto eol_at = [&](std::size_t k) -> std::size_t {  // length of the line end at k, 0 if none
        if (k < s.size() && s[k] == '\r') return (k + 1 < s.size() && s[k + 1] == '\n') ? 2 : 1;
        if (k < s.size() && s[k] == '\n') return 1;
        return 0;
    };
    while (i < s.size()) {
        if (line_start && s[i] == '.') {
            if (s.compare(i, 3, ".\r\n") == 0) {
                r.done = true;
                r.consumed = i + 3;
                return r;
            }
            if (i + 1 < s.size() && eol_at(i + 1) == 0) ++i;  // stuffed dot
            else if (i + 1 >= s.size()) break;                 // undecidable: stop
        }
        const std::size_t e = eol_at(i);
        if (e == 1 && s[i] == '\r' && i + 1 >= s.size()) break;  // CR at the end: undecidable
        if (e) {
            r.body += "\r\n";
            line_start = e == 2;
            i += e;
        } else {
            r.body += s[i];
            line_start = false;
            ++i;
        }
    }
    r.consumed = s.size();
    return r;
}

TEST(SmtpDataDecoder, MatchesReferenceUnderRandomChunking) {
    std::mt19937 rng(5321);
    const char alphabet[] = {'\r', '\n', '.', 'x'};
    for (int iter = 0; iter < 5000; ++iter) {
        std::string s;
        const int len = static_cast<int>(rng() % 24);
        for (int k = 0; k < len; ++k) s += alphabet[rng() % 4];
        s += "\r\n.\r\nTAIL";
        const reference_result ref = reference(s);
        ASSERT_TRUE(ref.done) << ::testing::PrintToString(s);

        data_decoder d(1 << 20);
        std::string body;
        std::size_t pos = 0;
        while (pos < s.size() && !d.done()) {
            const std::size_t n = 1 + rng() % 5;
            const std::string piece = s.substr(pos, n);
            pos += d.consume(piece, body);
        }
        ASSERT_TRUE(d.done()) << ::testing::PrintToString(s);
        EXPECT_EQ(pos, ref.consumed) << ::testing::PrintToString(s);
        EXPECT_EQ(body, ref.body) << ::testing::PrintToString(s);
        EXPECT_EQ(s.substr(pos), s.substr(ref.consumed));
    }
}

}  // namespace
}  // namespace postern::smtp
