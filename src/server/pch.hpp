// server/pch.hpp - precompiled header for the Asio layer (Asio is slow to parse: ~15 s per TU).
#pragma once
#include <asio.hpp>
#include <asio/ssl.hpp>
#include <asio/experimental/awaitable_operators.hpp>
