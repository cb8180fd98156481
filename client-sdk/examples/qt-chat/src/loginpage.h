// LoginPage: the server address, username and password; logs in or registers (then logs in).
#pragma once

#include <QWidget>

class QLabel;
class QLineEdit;
class QPushButton;

class LoginPage : public QWidget {
    Q_OBJECT
public:
    explicit LoginPage(QWidget *parent = nullptr);

    void setServer(const QString &server);
    void setUsername(const QString &username);
    /// Shows a message (an error, or what is going on) and re-enables the buttons.
    void setMessage(const QString &text);
    /// Disables the buttons while a login or registration runs.
    void setBusy(const QString &text);

signals:
    void loginRequested(const QString &server, const QString &username, const QString &password);
    void registerRequested(const QString &server, const QString &username,
                           const QString &password, const QString &nickname);

private:
    QLineEdit *server_;
    QLineEdit *username_;
    QLineEdit *password_;
    QLineEdit *nickname_;
    QPushButton *login_;
    QPushButton *register_;
    QLabel *message_;
};
