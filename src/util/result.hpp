// util/result.hpp - a small expected-like result<T> for the core: a value or an error string.
// Exceptions stay at the edges (start-up, CLI); the core returns result<T>.
#pragma once
#include <string>
#include <utility>
#include <variant>

namespace postern {

struct error {
    std::string message;
};

template <class T>
class result {
public:
    result(T value) : v_(std::move(value)) {}
    result(error e) : v_(std::move(e)) {}
    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }
    T& value() { return std::get<0>(v_); }
    const T& value() const { return std::get<0>(v_); }
    T& operator*() { return value(); }
    const T& operator*() const { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    const std::string& error_message() const { return std::get<1>(v_).message; }

private:
    std::variant<T, error> v_;
};

template <>
class result<void> {
public:
    result() = default;
    result(error e) : err_(std::move(e.message)), ok_(false) {}
    bool ok() const { return ok_; }
    explicit operator bool() const { return ok_; }
    const std::string& error_message() const { return err_; }

private:
    std::string err_;
    bool ok_ = true;
};

}  // namespace postern
