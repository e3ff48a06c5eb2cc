#include "filemesh/names.hpp"

#include <string>

#include "gtest/gtest.h"

namespace filemesh {
namespace {

using namespace std::string_literals;

TEST(NamesTest, ValidUtf8IsRecognised) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain.txt"));
  EXPECT_TRUE(IsValidUtf8("caf\xc3\xa9"));       // é
  EXPECT_TRUE(IsValidUtf8("\xe2\x82\xac"));      // €
  EXPECT_TRUE(IsValidUtf8("\xf0\x9f\x98\x80"));  // U+1F600
  EXPECT_TRUE(IsValidUtf8("\xf4\x8f\xbf\xbf"));  // U+10FFFF
}

TEST(NamesTest, MalformedUtf8IsRejected) {
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("a\x80"));             // lone continuation
  EXPECT_FALSE(IsValidUtf8("\xc3"));              // truncated
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xe0\x80\xaf"));      // overlong
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate U+D800
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xf5\x80\x80\x80"));
}

TEST(NamesTest, DisplayFormEscapesOnlyInvalidBytes) {
  EXPECT_EQ(DisplayForm("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(DisplayForm("a\xff"
                        "b"),
            "a\\xffb");
  EXPECT_EQ(DisplayForm("\xc3"), "\\xc3");
  EXPECT_EQ(DisplayForm("\xed\xa0\x80"), "\\xed\\xa0\\x80");
  EXPECT_EQ(DisplayForm("x\xc3\xa9\x80y"), "x\xc3\xa9\\x80y");
  // A literal backslash stays as it is: the raw fields disambiguate.
  EXPECT_EQ(DisplayForm("a\\xffb"), "a\\xffb");
  EXPECT_TRUE(IsValidUtf8(DisplayForm("\xff\xfe\x80 \xc3")));
}

TEST(NamesTest, ExactPathPrefersRawBytes) {
  v1::FileEntry entry;
  entry.set_path("dir/a\\xffb");
  entry.set_raw_path(
      "dir/a\xff"
      "b"s);
  entry.set_name("plain");
  EXPECT_EQ(ExactPath(entry),
            "dir/a\xff"
            "b"s);
  EXPECT_EQ(ExactName(entry), "plain");
}

}  // namespace
}  // namespace filemesh
