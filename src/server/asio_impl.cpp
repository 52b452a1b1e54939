// server/asio_impl.cpp - the one translation unit that compiles Asio's implementation
// (ASIO_SEPARATE_COMPILATION), so the other Asio files only parse declarations.
#include <asio/impl/src.hpp>
#include <asio/ssl/impl/src.hpp>
