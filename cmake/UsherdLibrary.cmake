# usherd_library(NAME DIR): a static library of every .cpp in DIR except *_main.cpp (a folder
# still being written may have headers only, and then becomes an INTERFACE library), with the
# project root on the include path so every include reads "folder/file.h".
function(usherd_library name)
  file(GLOB sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  list(FILTER sources EXCLUDE REGEX "_main\\.cpp$")
  if(sources)
    add_library(${name} STATIC ${sources})
    target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  else()
    add_library(${name} INTERFACE)
    target_include_directories(${name} INTERFACE ${PROJECT_SOURCE_DIR})
  endif()
endfunction()

# usherd_link(NAME ...): target_link_libraries that works for both kinds of usherd_library.
function(usherd_link name)
  get_target_property(type ${name} TYPE)
  if(type STREQUAL "INTERFACE_LIBRARY")
    list(FILTER ARGN EXCLUDE REGEX "^(PUBLIC|PRIVATE|INTERFACE)$")
    target_link_libraries(${name} INTERFACE ${ARGN})
  else()
    target_link_libraries(${name} ${ARGN})
  endif()
endfunction()
