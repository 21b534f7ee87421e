defmodule DepEcho do
  @moduledoc """
  A TLS echo through `:rssl` in the scratch mix project: a server and a
  client in one VM, a real handshake (the client verifies the server's
  certificate), payloads echoed and compared, then the close seen by the
  server. `main/1` prints "dep_echo: ok ..." and exits 0, or exits 1 saying
  what broke.
  """

  # A guard against a hang, not a timing: every step normally takes milliseconds.
  @deadline 60_000

  def main(cert_dir) do
    version = run(cert_dir)
    IO.puts("dep_echo: ok (#{inspect(version)})")
    System.halt(0)
  rescue
    e ->
      IO.puts("dep_echo: FAILED " <> Exception.format(:error, e, __STACKTRACE__))
      System.halt(1)
  end

  defp run(cert_dir) do
    :ok = :rssl.start()
    cert = String.to_charlist(Path.join(cert_dir, "cert.pem"))
    key = String.to_charlist(Path.join(cert_dir, "key.pem"))

    {:ok, listen} =
      :rssl.listen(0, [:binary, active: false, reuseaddr: true, certfile: cert, keyfile: key])

    {:ok, {_, port}} = :rssl.sockname(listen)
    parent = self()
    server = spawn_link(fn -> serve(listen, parent) end)

    {:ok, socket} =
      :rssl.connect(
        ~c"localhost",
        port,
        [
          :binary,
          active: false,
          verify: :verify_peer,
          cacertfile: cert,
          server_name_indication: ~c"localhost"
        ],
        @deadline
      )

    # Several TLS records' worth in the middle one.
    payloads = ["hello", :crypto.strong_rand_bytes(100_000), "bye"]
    Enum.each(payloads, &echo(socket, &1))
    {:ok, [protocol: version]} = :rssl.connection_information(socket, [:protocol])
    :ok = :rssl.close(socket)
    total = payloads |> Enum.map(&byte_size/1) |> Enum.sum()

    receive do
      {^server, :closed, ^total} -> :ok
      {^server, :closed, other} -> raise "server echoed #{other} bytes, expected #{total}"
    after
      @deadline -> raise "the server saw no close"
    end

    :ok = :rssl.close(listen)
    version
  end

  defp echo(socket, payload) do
    :ok = :rssl.send(socket, payload)

    case :rssl.recv(socket, byte_size(payload), @deadline) do
      {:ok, ^payload} ->
        :ok

      other ->
        raise "echo of #{byte_size(payload)} bytes came back as #{inspect(other, limit: 5)}"
    end
  end

  defp serve(listen, parent) do
    {:ok, transport} = :rssl.transport_accept(listen, @deadline)
    {:ok, socket} = :rssl.handshake(transport, @deadline)
    echo_loop(socket, parent, 0)
  end

  defp echo_loop(socket, parent, echoed) do
    case :rssl.recv(socket, 0, @deadline) do
      {:ok, data} ->
        :ok = :rssl.send(socket, data)
        echo_loop(socket, parent, echoed + byte_size(data))

      {:error, :closed} ->
        send(parent, {self(), :closed, echoed})
    end
  end
end
