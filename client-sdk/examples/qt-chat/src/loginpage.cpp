#include "loginpage.h"

#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QVBoxLayout>

LoginPage::LoginPage(QWidget *parent) : QWidget(parent) {
    server_ = new QLineEdit(QStringLiteral("127.0.0.1:7900"), this);
    username_ = new QLineEdit(this);
    password_ = new QLineEdit(this);
    password_->setEchoMode(QLineEdit::Password);
    nickname_ = new QLineEdit(this);
    nickname_->setPlaceholderText(tr("optional, for registering"));
    login_ = new QPushButton(tr("Log in"), this);
    login_->setDefault(true);
    register_ = new QPushButton(tr("Register"), this);
    message_ = new QLabel(this);
    message_->setWordWrap(true);

    auto *form = new QFormLayout;
    form->addRow(tr("Server"), server_);
    form->addRow(tr("Username"), username_);
    form->addRow(tr("Password"), password_);
    form->addRow(tr("Nickname"), nickname_);
    auto *buttons = new QHBoxLayout;
    buttons->addWidget(login_);
    buttons->addWidget(register_);
    auto *box = new QWidget(this);
    box->setMaximumWidth(420);
    auto *inner = new QVBoxLayout(box);
    auto *title = new QLabel(tr("<h2>Feige</h2>"), box);
    inner->addWidget(title);
    inner->addLayout(form);
    inner->addLayout(buttons);
    inner->addWidget(message_);
    auto *outer = new QHBoxLayout(this);
    outer->addStretch(1);
    outer->addWidget(box);
    outer->addStretch(1);

    auto login = [this] {
        emit loginRequested(server_->text().trimmed(), username_->text().trimmed(), password_->text());
    };
    connect(login_, &QPushButton::clicked, this, login);
    connect(password_, &QLineEdit::returnPressed, this, login);
    connect(register_, &QPushButton::clicked, this, [this] {
        emit registerRequested(server_->text().trimmed(), username_->text().trimmed(),
                               password_->text(), nickname_->text().trimmed());
    });
}

void LoginPage::setServer(const QString &server) { server_->setText(server); }

void LoginPage::setUsername(const QString &username) { username_->setText(username); }

void LoginPage::setMessage(const QString &text) {
    message_->setText(text);
    login_->setEnabled(true);
    register_->setEnabled(true);
}

void LoginPage::setBusy(const QString &text) {
    message_->setText(text);
    login_->setEnabled(false);
    register_->setEnabled(false);
}
